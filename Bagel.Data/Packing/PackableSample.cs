using Bagel.Core.DataStatus;
using static TorchSharp.torch;

namespace Bagel.Data.Packing;

/// <summary>
/// A sample ready to pack: its plan, the token ids of its texts and its transformed images (float32 [3, H, W] in
/// [-1, 1]; VAE images have sides divisible by 16, ViT images by 14), both in plan order. Owns the image tensors.
/// </summary>
public sealed class PackableSample : IDisposable
{
    /// <summary>Creates the sample; the token estimate follows the reference (texts plus H·W/stride² per image).</summary>
    /// <param name="index">Group, worker and source position (for the data status).</param>
    /// <param name="origin">File and row, for messages.</param>
    /// <param name="plan">The sequence plan.</param>
    /// <param name="texts">Token ids of each text item, in plan order (dropped items still consume theirs).</param>
    /// <param name="images">Image tensors of each image item, in plan order; ownership passes to the sample.</param>
    /// <param name="vaeStride">The stride of the VAE images' transform (the reference's <c>transform.stride</c>, the
    /// image pixels per latent token side): each VAE image counts H·W/stride² tokens. Default <see cref="VaeStride"/>.</param>
    public PackableSample(SampleDataIndex index, string origin, IReadOnlyList<PlanItem> plan, IReadOnlyList<int[]> texts, IReadOnlyList<Tensor> images,
        int vaeStride = VaeStride)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vaeStride);
        Index = index ?? throw new ArgumentNullException(nameof(index));
        Origin = origin ?? string.Empty;
        Plan = plan ?? throw new ArgumentNullException(nameof(plan));
        Texts = texts ?? throw new ArgumentNullException(nameof(texts));
        Images = images ?? throw new ArgumentNullException(nameof(images));
        int textItems = plan.Count(p => p.Kind == PlanItemKind.Text);
        if (textItems != texts.Count || plan.Count - textItems != images.Count)
            throw new ArgumentException($"Sample {origin}: the plan has {textItems} text and {plan.Count - textItems} image items, but {texts.Count} texts and {images.Count} images were given.");
        long tokens = texts.Sum(t => (long)t.Length);
        int image = 0;
        foreach (PlanItem item in plan.Where(p => p.Kind != PlanItemKind.Text))
        {
            Tensor t = images[image++];
            int stride = item.Kind == PlanItemKind.VaeImage ? vaeStride : VitStride;
            tokens += t.shape[1] * t.shape[2] / (stride * stride);
        }
        NumTokens = tokens;
    }

    /// <summary>The default VAE image stride: VAE downsample 8 × latent patch 2.</summary>
    public const int VaeStride = 16;

    /// <summary>The ViT patch size.</summary>
    public const int VitStride = 14;

    /// <summary>Group, worker and source position.</summary>
    public SampleDataIndex Index { get; }

    /// <summary>File and row, for messages.</summary>
    public string Origin { get; }

    /// <summary>The sequence plan.</summary>
    public IReadOnlyList<PlanItem> Plan { get; }

    /// <summary>Token ids of the text items, in plan order.</summary>
    public IReadOnlyList<int[]> Texts { get; }

    /// <summary>Transformed images of the image items, in plan order.</summary>
    public IReadOnlyList<Tensor> Images { get; }

    /// <summary>The reference's token estimate <c>num_tokens</c>: texts plus image tokens, without markers.</summary>
    public long NumTokens { get; }

    /// <summary>The packed length when nothing is dropped: <c>num_tokens + 2·len(plan)</c> (the markers).</summary>
    public long PackedLength => NumTokens + 2L * Plan.Count;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Tensor image in Images) image.Dispose();
    }
}
