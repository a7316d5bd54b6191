using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Images;
using Bagel.Data.Packing;
using Bagel.Data.Samples;
using Bagel.Data.Sources;
using Bagel.Data.Tokenization;
using Bagel.Tests.Data.Pipeline;
using Bagel.Tests.Infrastructure;

namespace Bagel.Tests.Data.Samples;

/// <summary><see cref="SampleBuilder"/> takes any <see cref="ITextTokenizer"/>, not only the concrete Qwen2 tokenizer.</summary>
public sealed class SampleBuilderTokenizerTests
{
    /// <summary>A tokenizer that maps each character to its code, recording what it was asked.</summary>
    private sealed class CharTokenizer : ITextTokenizer
    {
        public List<string> Seen { get; } = [];

        public int[] Encode(string text)
        {
            lock (Seen) Seen.Add(text);
            return [.. text.Select(c => (int)c)];
        }
    }

    [Fact]
    public void AnImageFolderSampleIsBuiltWithACustomTokenizer()
    {
        using var folder = new TempDirectory("bagel-tokenizer-");
        string image = Path.Combine(folder.Path, "cat.png");
        File.WriteAllBytes(image, PipelineFixture.Png(48, 32, seed: 3));
        var tokenizer = new CharTokenizer();
        var builder = new SampleBuilder(tokenizer, new ImageDecoder(), new ImageTransform(PipelineFixture.Vae), null, new DataSkipCounters());
        var raw = new RawSample(new SampleDataIndex("folder", 0, new SourcePosition(SourcePositionKind.ImageFolder, [0])), image, new ImageFolderPayload(image, "a cat"));

        using PackableSample sample = builder.Build(raw, new SeededRandomSource(1))!;

        Assert.Equal(["a cat"], tokenizer.Seen);
        Assert.Equal([.. "a cat".Select(c => (int)c)], sample.Texts[0]);
        Assert.Equal([PlanItemKind.Text, PlanItemKind.VaeImage], sample.Plan.Select(p => p.Kind));
    }

    [Fact]
    public void TheTokenEstimateUsesTheTransformsStride()
    {
        // The reference counts H·W/transform.stride² per image; with stride 32 a 64x32 image is 2 tokens.
        using var folder = new TempDirectory("bagel-stride-");
        string image = Path.Combine(folder.Path, "wide.png");
        File.WriteAllBytes(image, PipelineFixture.Png(64, 32, seed: 4));
        var transform = new ImageTransform(new ImageTransformOptions { ImageStride = 32, MaxImageSize = 64, MinImageSize = 32 });
        var builder = new SampleBuilder(new CharTokenizer(), new ImageDecoder(), transform, null, new DataSkipCounters());
        var raw = new RawSample(new SampleDataIndex("folder", 0, new SourcePosition(SourcePositionKind.ImageFolder, [0])), image, new ImageFolderPayload(image, "ab"));

        using PackableSample sample = builder.Build(raw, new SeededRandomSource(1))!;

        Assert.Equal(32 * 64, sample.Images[0].shape[1] * sample.Images[0].shape[2]);
        Assert.Equal(2 + 2, sample.NumTokens);
    }

    [Fact]
    public void Qwen2TokenizerIsATextTokenizer() => Assert.True(typeof(ITextTokenizer).IsAssignableFrom(typeof(Qwen2Tokenizer)));
}
