using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Tests.Data.Packing;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Training.ValidationImages;

/// <summary>
/// A tiny text-to-image BAGEL (no ViT) over a bytes-only tokenizer (one token per character, BAGEL's special tokens
/// after them), and 4 distinct caption/image pairs (32×32 by default): two solid colours, four coloured quadrants and
/// stripes.
/// </summary>
internal static class TinyTextToImage
{
    public const int Side = 32; // 2 latent tokens of 16 px per side (the tiny model makes up to 64 px)

    public static BagelTokenizerSetup Tokenizer { get; } = BagelSpecialTokens.Apply(ByteLevelBpeTrainer.BytesOnly());

    public static BagelConfig Config(int hidden = 16, int intermediate = 24) => new()
    {
        VisualGen = true,
        VisualUnd = false,
        LlmConfig = Qwen2Fixtures.Tiny() with { HiddenSize = hidden, IntermediateSize = intermediate, VocabSize = Tokenizer.Tokenizer.Count },
        VitConfig = null,
        VaeConfig = BagelTestModels.Vae,
        MaxLatentSize = BagelTestModels.MaxLatentSize,
    };

    public static readonly string[] Captions = ["solid red", "solid blue", "four quadrants", "green stripes"];

    /// <summary>Image <paramref name="i"/> as [3, side, side] in [-1, 1].</summary>
    public static Tensor Image(int i, int side = Side)
    {
        var rgb = new float[3, side, side];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                (float r, float g, float b) = i switch
                {
                    0 => (1f, -1f, -1f),
                    1 => (-1f, -1f, 1f),
                    2 => (y < side / 2, x < side / 2) switch
                    {
                        (true, true) => (1f, 1f, -1f),
                        (true, false) => (-1f, 1f, 1f),
                        (false, true) => (1f, -1f, 1f),
                        _ => (-1f, -1f, -1f),
                    },
                    _ => (y / (side / 4) % 2 == 0) ? (-1f, 1f, -1f) : (1f, 1f, 1f),
                };
                rgb[0, y, x] = r;
                rgb[1, y, x] = g;
                rgb[2, y, x] = b;
            }
        return torch.tensor(rgb);
    }

    public static int[] Encode(string text) => [.. Tokenizer.Tokenizer.Encode(text)];

    /// <summary>One pack of the 4 pairs at <paramref name="side"/> px (no conditioning dropout; the timesteps from <paramref name="seed"/>).</summary>
    public static PackedBatch Pack(long seed, int side = Side)
    {
        var options = new PackingOptions { MaxLatentSize = BagelTestModels.MaxLatentSize, TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0 };
        var packer = new SequencePacker(options, Tokenizer.SpecialTokenIds);
        var builder = new PackedBatchBuilder();
        var owned = new List<Tensor>();
        var dropout = new SeededRandomSource(11);
        var timesteps = new SeededRandomSource((ulong)seed);
        PackableSample[] samples = [.. Enumerable.Range(0, 4).Select(i => new PackableSample(SequencePackerTests.Index("t2i_pretrain", i), Captions[i],
            [PlanItem.Text(false, false), PlanItem.NoisyVaeImage()], [Encode(Captions[i])], [Image(i, side)]))];
        try
        {
            foreach (PackableSample sample in samples) packer.Pack(builder, sample, dropout, timesteps, owned);
            return builder.Build(limits: Config().BatchLimits);
        }
        finally
        {
            owned.ForEach(t => t.Dispose());
            foreach (PackableSample sample in samples) sample.Dispose();
        }
    }

    /// <summary>The 4 pairs over and over, each pack with fresh timesteps.</summary>
    public static async IAsyncEnumerable<PackedBatch> Endless([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken, int side = Side)
    {
        for (long i = 0; ; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return Pack(100 + i, side);
            await Task.Yield();
        }
    }

    /// <summary>Peak signal-to-noise ratio of two uint8 images, in dB.</summary>
    public static double Psnr(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        double mse = (a.to(float64) - b.to(float64)).pow(2).mean().item<double>();
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }
}
