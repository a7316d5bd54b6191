using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>
/// The Qwen2.5 tokenizer from ../shared/data/tokenizer/qwen2.5, loaded once for all tests of the collection
/// (the 2.7 MB vocabulary and 151k merges take a moment). A test that asks for it is skipped when the data is absent.
/// </summary>
public sealed class Qwen2TokenizerFixture
{
    /// <summary>The folder name under the shared data.</summary>
    public const string Qwen25Folder = "tokenizer/qwen2.5";

    private readonly Lazy<Qwen2Tokenizer> _tokenizer = new(() => Qwen2Tokenizer.FromFolder(SharedData.Require(Qwen25Folder)));

    /// <summary>The loaded tokenizer (skips the calling test when the data is absent).</summary>
    public Qwen2Tokenizer Tokenizer
    {
        get
        {
            SharedData.Require(Qwen25Folder);
            return _tokenizer.Value;
        }
    }

    /// <summary>The shared Qwen2.5 tokenizer folder (skips the calling test when absent).</summary>
    public static string FolderPath => SharedData.Require(Qwen25Folder);
}

/// <summary>The test classes that share one loaded Qwen2.5 tokenizer.</summary>
[CollectionDefinition(Name)]
public sealed class Qwen2TokenizerCollection : ICollectionFixture<Qwen2TokenizerFixture>
{
    /// <summary>The collection name.</summary>
    public const string Name = "Qwen2.5 tokenizer";
}
