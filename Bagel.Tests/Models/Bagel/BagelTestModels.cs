using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Tests.Data.Packing;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Tiny BAGEL configs and packed batches (built with the real <see cref="SequencePacker"/>) for the composite's tests.</summary>
internal static class BagelTestModels
{
    /// <summary>A tiny max_latent_size: 4 tokens per side (64 px images).</summary>
    public const int MaxLatentSize = 4;

    /// <summary>Special tokens inside the tiny vocabulary of 40.</summary>
    public static readonly BagelSpecialTokenIds Tokens = new(BosTokenId: 36, EosTokenId: 37, StartOfImage: 38, EndOfImage: 39);

    /// <summary>A tiny FLUX-shaped autoencoder (×8, 16 latent channels, so 64 features per 2×2 token as in BAGEL).</summary>
    public static FluxVaeConfig Vae { get; } = new(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159);

    /// <summary>A tiny SigLIP tower with BAGEL's 70×70 position table and 14 px patches (2 layers, 1 after the overrides).</summary>
    public static SiglipVisionConfig Vit { get; } = new SiglipVisionConfig
    {
        HiddenSize = 8,
        IntermediateSize = 16,
        NumHiddenLayers = 2,
        NumAttentionHeads = 2,
        ImageSize = 980,
        PatchSize = 14,
    }.WithBagelOverrides();

    public static BagelConfig Config(bool visualGen = true, bool visualUnd = true,
        Qwen2LayerModule layerModule = Qwen2LayerModule.Qwen2MoTDecoderLayer) => new()
    {
        VisualGen = visualGen,
        VisualUnd = visualUnd,
        LlmConfig = Qwen2Fixtures.Tiny(layerModule),
        VitConfig = visualUnd ? Vit : null,
        VaeConfig = visualGen ? Vae : null,
        MaxLatentSize = MaxLatentSize,
    };

    public static BagelModel Model(bool visualGen = true, bool visualUnd = true, long seed = 7,
        Qwen2LayerModule layerModule = Qwen2LayerModule.Qwen2MoTDecoderLayer)
    {
        torch.manual_seed(seed);
        return new BagelModel(Config(visualGen, visualUnd, layerModule));
    }

    private static Tensor Image(int height, int width) => torch.rand(3, height, width).mul(2).sub(1);

    public static PackableSample T2I(long row = 0) =>
        new(SequencePackerTests.Index("t2i", row), "t2i", [PlanItem.Text(true, false), PlanItem.NoisyVaeImage()], [[5, 6, 7]], [Image(32, 32)]);

    public static PackableSample Vlm(long row = 0) =>
        new(SequencePackerTests.Index("vlm", row), "vlm", [PlanItem.VitImage(true), PlanItem.Text(false, loss: true)], [[8, 9, 10, 11]], [Image(28, 28)]);

    public static PackableSample Edit(long row = 0) =>
        new(SequencePackerTests.Index("edit", row), "edit",
            [PlanItem.CleanVaeImage(true), PlanItem.VitImage(true), PlanItem.Text(true, false), PlanItem.NoisyVaeImage()],
            [[12, 13]], [Image(32, 48), Image(28, 42), Image(32, 32)]);

    public static PackableSample TextOnly(long row = 0) =>
        new(SequencePackerTests.Index("text", row), "text", [PlanItem.Text(false, loss: true)], [[14, 15, 16, 17, 18]], []);

    /// <summary>Packs the samples (no conditioning dropout; timesteps from a fixed seed) and disposes them.</summary>
    /// <summary>An endless stream of packs, each with a T2I, a VLM and an edit sample (sample i of each).</summary>
    public static async IAsyncEnumerable<PackedBatch> EndlessMixedBatches([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (int i = 0; ; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return Pack(T2I(i), Vlm(i), Edit(i));
            await Task.Yield();
        }
    }

    public static PackedBatch Pack(params PackableSample[] samples)
    {
        var options = new PackingOptions { MaxLatentSize = MaxLatentSize, TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0 };
        var packer = new SequencePacker(options, Tokens);
        var builder = new PackedBatchBuilder();
        var owned = new List<Tensor>();
        var dropout = new SeededRandomSource(11);
        var timesteps = new SeededRandomSource(12);
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

    /// <summary>Random clean latents of the right shape for the batch's VAE images (no VAE run), or null.</summary>
    public static IReadOnlyList<Tensor>? RandomLatents(PackedBatch batch, long seed = 5)
    {
        if (batch.Vae is not { } vae) return null;
        var generator = new Generator((ulong)seed);
        return [.. vae.LatentShapes.Select(g => torch.randn([Vae.ZChannels, g.Height * 2, g.Width * 2], generator: generator))];
    }

    /// <summary>The named parameter of <paramref name="model"/>.</summary>
    public static Tensor Parameter(nn.Module model, string name) =>
        model.named_parameters().Single(p => p.name == name).parameter;
}
