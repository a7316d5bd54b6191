namespace Bagel.Tests.Data.Tokenization;

/// <summary>One llama.cpp tokenizer test case: the input text and the ids Hugging Face's Qwen2 tokenizer gives.</summary>
/// <param name="Index">The case's position in the files (0-based).</param>
/// <param name="Input">The text, whitespace-exact.</param>
/// <param name="ExpectedIds">The expected ids.</param>
public sealed record TokenizerTestVector(int Index, string Input, int[] ExpectedIds);

/// <summary>
/// Reads llama.cpp's Qwen2 vectors (../shared/data/tokenizer/qwen2-tokenizer-vectors.inp/.out) the way its
/// test-tokenizer-0 does: the .inp file split on the exact separator, the .out file one trimmed line per case.
/// </summary>
internal static class TokenizerTestVectors
{
    /// <summary>The separator between cases in the .inp file.</summary>
    private const string CaseSeparator = "\n__ggml_vocab_test__\n";

    /// <summary>The number of cases in the files (SOURCES.md, item 2).</summary>
    public const int ExpectedCaseCount = 46;

    public static IReadOnlyList<TokenizerTestVector> Load()
    {
        string inputs = File.ReadAllText(SharedData.Require("tokenizer/qwen2-tokenizer-vectors.inp"));
        string outputs = File.ReadAllText(SharedData.Require("tokenizer/qwen2-tokenizer-vectors.out"));
        // The .inp file ends with the separator, so the split leaves one empty piece after the last case.
        string[] cases = inputs.Split(CaseSeparator);
        Assert.Equal("", cases[^1]);
        string[] lines = outputs.Split('\n');
        var vectors = new List<TokenizerTestVector>();
        for (int i = 0; i < cases.Length - 1; i++)
        {
            string line = lines[i].Trim();
            int[] ids = line.Length == 0 ? [] : [.. line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)];
            vectors.Add(new TokenizerTestVector(i, cases[i], ids));
        }
        return vectors;
    }
}
