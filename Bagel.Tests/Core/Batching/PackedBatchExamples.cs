using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Batching;

/// <summary>
/// A small valid two-sample batch written by hand (24 tokens), shaped like the reference's packing:
/// sample 0 is T2I (3-token caption, 32×32 noisy image: 2×2 latents), sample 1 is a ViT image (28×28: 4 patches),
/// a labelled 2-token answer, then a clean 16×16 VAE image (1 latent). Latent ids use max_latent_size 4.
/// </summary>
internal sealed class PackedBatchExamples : IDisposable
{
    public const long Bos = 151644, Eos = 151645, VisionStart = 151652, VisionEnd = 151653;
    public const int MaxLatentSize = 4;

    private readonly Tensor _noisyImage = torch.ones(3, 32, 32);
    private readonly Tensor _cleanImage = torch.full(new long[] { 3, 16, 16 }, 0.5f);
    private readonly Tensor _vitPatches = torch.ones(4, VitImageFields.PatchVectorSize);

    public PackedBatchBuilder ValidBuilder()
    {
        var b = new PackedBatchBuilder();
        // Sample 0: bos c1 c2 c3 eos | vs l l l l ve   (causal 5, noise 6)
        b.AddSample(SampleLayout.FromSplits(new(5, AttentionMode.Causal), new(6, AttentionMode.Noise)),
            new SampleDataIndex("t2i_pretrain", 0, SourcePosition.T2I(0, 1, 7)));
        b.TextIds.AddRange([Bos, 10, 11, 12, Eos, VisionStart, VisionEnd]);
        b.TextIndexes.AddRange([0, 1, 2, 3, 4, 5, 10]);
        b.PositionIds.AddRange([0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5]);
        b.AddVaeImage(_noisyImage);
        b.VaeTokenIndexes.AddRange([6, 7, 8, 9]);
        b.LatentPositionIds.AddRange([0, 1, 4, 5]);
        b.Timesteps.AddRange([0.3f, 0.3f, 0.3f, 0.3f]);
        b.MseLossIndexes.AddRange([6, 7, 8, 9]);

        // Sample 1: vs p p p p ve | bos a1 a2 eos | vs l ve   (full 6, causal 4, full 3)
        b.AddSample(SampleLayout.FromSplits(new(6, AttentionMode.Full), new(4, AttentionMode.Causal), new(3, AttentionMode.Full)),
            new SampleDataIndex("vlm_sft", 1, SourcePosition.Vlm(12)));
        b.TextIds.AddRange([VisionStart, VisionEnd, Bos, 20, 21, Eos, VisionStart, VisionEnd]);
        b.TextIndexes.AddRange([11, 16, 17, 18, 19, 20, 21, 23]);
        b.PositionIds.AddRange([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 5]);
        b.AddVitImage(_vitPatches);
        b.VitTokenIndexes.AddRange([12, 13, 14, 15]);
        b.VitPositionIds.AddRange([0, 1, 70, 71]);
        b.LabelIds.AddRange([20, 21, Eos]);
        b.CeLossIndexes.AddRange([17, 18, 19]);
        float weight = 1f / MathF.Sqrt(3);
        b.CeLossWeights.AddRange([weight, weight, weight]);
        b.AddVaeImage(_cleanImage);
        b.VaeTokenIndexes.Add(22);
        b.LatentPositionIds.Add(0);
        b.Timesteps.Add(float.NegativeInfinity);
        return b;
    }

    /// <summary>A one-sample text-only batch: bos t eos (no optional group).</summary>
    public static PackedBatchBuilder TextOnlyBuilder()
    {
        var b = new PackedBatchBuilder();
        b.AddSample(SampleLayout.FromSplits(new AttentionSplit(3, AttentionMode.Causal)), new SampleDataIndex("text", 0, SourcePosition.Vlm(0)));
        b.TextIds.AddRange([Bos, 7, Eos]);
        b.TextIndexes.AddRange([0, 1, 2]);
        b.PositionIds.AddRange([0, 1, 2]);
        return b;
    }

    public void Dispose()
    {
        _noisyImage.Dispose();
        _cleanImage.Dispose();
        _vitPatches.Dispose();
    }
}
