using Bagel.Core.DataStatus;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Batching;

/// <summary>
/// Collects a packed batch on the host as plain lists and builds the tensors once: zero-pads the VAE images to a
/// common size (bottom/right, as the reference), concatenates the ViT patches, and leaves out the groups the batch
/// does not use. The packer fills it in sequence order; tests use it to write small batches by hand.
/// </summary>
/// <remarks>The builder does not own the image tensors passed to <see cref="AddVaeImage"/> and
/// <see cref="AddVitImage"/>: keep them alive until <see cref="Build"/>, which copies them.</remarks>
public sealed class PackedBatchBuilder
{
    private readonly List<Tensor> _vaeImages = [];
    private readonly List<Tensor> _vitPatches = [];

    /// <summary>The rank the batch belongs to (default 0).</summary>
    public int Rank { get; set; }

    /// <summary>Image pixels per latent token side for <see cref="AddVaeImage"/>: the VAE's downsampling ×
    /// <c>latent_patch_size</c> (default <see cref="VaeImageFields.DefaultPixelsPerLatentToken"/>, FLUX's 8 × 2). Set it
    /// before adding VAE images; the built batch carries it in <see cref="VaeImageFields.PixelsPerLatentToken"/>.</summary>
    public int VaePixelsPerLatentToken
    {
        get => _vaePixelsPerLatentToken;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            if (_vaeImages.Count > 0 && value != _vaePixelsPerLatentToken)
                throw new InvalidOperationException($"VaePixelsPerLatentToken is {_vaePixelsPerLatentToken} and {_vaeImages.Count} VAE image(s) were added with it; set it before adding VAE images.");
            _vaePixelsPerLatentToken = value;
        }
    }

    private int _vaePixelsPerLatentToken = VaeImageFields.DefaultPixelsPerLatentToken;

    /// <summary>The sample layouts, in order (see <see cref="AddSample"/>).</summary>
    public List<SampleLayout> Samples { get; } = [];

    /// <summary>One data index per sample, in order (see <see cref="AddSample"/>).</summary>
    public List<SampleDataIndex> DataIndexes { get; } = [];

    /// <summary>Entries of <c>packed_text_ids</c>.</summary>
    public List<long> TextIds { get; } = [];

    /// <summary>Entries of <c>packed_text_indexes</c>.</summary>
    public List<long> TextIndexes { get; } = [];

    /// <summary>Entries of <c>packed_position_ids</c> (one per token).</summary>
    public List<long> PositionIds { get; } = [];

    /// <summary>The latent grid of each VAE image added, in order.</summary>
    public List<LatentGrid> LatentShapes { get; } = [];

    /// <summary>Entries of <c>packed_latent_position_ids</c>.</summary>
    public List<long> LatentPositionIds { get; } = [];

    /// <summary>Entries of <c>packed_vae_token_indexes</c>.</summary>
    public List<long> VaeTokenIndexes { get; } = [];

    /// <summary>Entries of <c>packed_timesteps</c> (−inf for clean images).</summary>
    public List<float> Timesteps { get; } = [];

    /// <summary>Entries of <c>mse_loss_indexes</c>.</summary>
    public List<long> MseLossIndexes { get; } = [];

    /// <summary>Entries of <c>packed_vit_position_ids</c>.</summary>
    public List<long> VitPositionIds { get; } = [];

    /// <summary>Entries of <c>packed_vit_token_indexes</c>.</summary>
    public List<long> VitTokenIndexes { get; } = [];

    /// <summary>Entries of <c>vit_token_seqlens</c> (filled by <see cref="AddVitImage"/>).</summary>
    public List<long> VitTokenSeqlens { get; } = [];

    /// <summary>Entries of <c>packed_label_ids</c>.</summary>
    public List<long> LabelIds { get; } = [];

    /// <summary>Entries of <c>ce_loss_indexes</c>.</summary>
    public List<long> CeLossIndexes { get; } = [];

    /// <summary>Entries of <c>ce_loss_weights</c>.</summary>
    public List<float> CeLossWeights { get; } = [];

    /// <summary>The tokens added so far (Σ sample lengths).</summary>
    public int SequenceLength => Samples.Sum(s => s.Length);

    /// <summary>Appends a sample's layout and its data index.</summary>
    /// <param name="layout">The sample's length and splits.</param>
    /// <param name="dataIndex">Where the sample came from.</param>
    public void AddSample(SampleLayout layout, SampleDataIndex dataIndex)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(dataIndex);
        Samples.Add(layout);
        DataIndexes.Add(dataIndex);
    }

    /// <summary>Appends a VAE image ([3, H, W] float32, H and W multiples of s = <see cref="VaePixelsPerLatentToken"/>,
    /// 16 by default) and records its latent grid (H/s, W/s).</summary>
    /// <param name="image">The normalized image (borrowed until <see cref="Build"/>).</param>
    /// <returns>The latent grid.</returns>
    /// <exception cref="ArgumentException">The image has another shape or dtype, or a side is not a multiple of s.</exception>
    public LatentGrid AddVaeImage(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.dtype != ScalarType.Float32 || image.ndim != 3 || image.shape[0] != 3)
            throw new ArgumentException($"A VAE image is a [3, H, W] float32 tensor; got {image.dtype} [{string.Join(", ", image.shape)}].", nameof(image));
        int stride = _vaePixelsPerLatentToken;
        if (image.shape[1] % stride != 0 || image.shape[2] % stride != 0 || image.shape[1] == 0 || image.shape[2] == 0)
            throw new ArgumentException($"A VAE image's sides are positive multiples of {stride}; got {image.shape[1]}x{image.shape[2]}.", nameof(image));
        var grid = new LatentGrid((int)(image.shape[1] / stride), (int)(image.shape[2] / stride));
        _vaeImages.Add(image);
        LatentShapes.Add(grid);
        return grid;
    }

    /// <summary>Appends a ViT image's patches ([p, 588] float32) and records p in <see cref="VitTokenSeqlens"/>.</summary>
    /// <param name="patches">The patch vectors (borrowed until <see cref="Build"/>).</param>
    /// <exception cref="ArgumentException">The tensor has another shape or dtype.</exception>
    public void AddVitImage(Tensor patches)
    {
        ArgumentNullException.ThrowIfNull(patches);
        if (patches.dtype != ScalarType.Float32 || patches.ndim != 2 || patches.shape[1] != VitImageFields.PatchVectorSize || patches.shape[0] == 0)
            throw new ArgumentException($"ViT patches are a [p, {VitImageFields.PatchVectorSize}] float32 tensor with p ≥ 1; got {patches.dtype} [{string.Join(", ", patches.shape)}].", nameof(patches));
        _vitPatches.Add(patches);
        VitTokenSeqlens.Add(patches.shape[0]);
    }

    /// <summary>Builds the batch on the CPU. Groups with no image (or no label) are left out (null).</summary>
    /// <param name="validate">Run <see cref="PackedBatch.Validate"/> before returning (default true).</param>
    /// <param name="limits">Model limits for the validation.</param>
    /// <returns>The batch; the caller owns it.</returns>
    /// <exception cref="PackedBatchValidationException">Validation failed (nothing leaks).</exception>
    public PackedBatch Build(bool validate = true, PackedBatchLimits? limits = null)
    {
        PackedBatch? batch = null;
        try
        {
            batch = new PackedBatch([.. Samples], torch.tensor(TextIds.ToArray()), torch.tensor(TextIndexes.ToArray()),
                torch.tensor(PositionIds.ToArray()), BuildVae(), BuildVit(), BuildTextLoss(), [.. DataIndexes], Rank);
            if (validate) batch.Validate(limits);
            return batch;
        }
        catch
        {
            batch?.Dispose();
            throw;
        }
    }

    private VaeImageFields? BuildVae()
    {
        if (_vaeImages.Count == 0) return null;
        long height = _vaeImages.Max(i => i.shape[1]);
        long width = _vaeImages.Max(i => i.shape[2]);
        Tensor padded = torch.zeros(_vaeImages.Count, 3, height, width, ScalarType.Float32);
        using (torch.NewDisposeScope())
        {
            for (int i = 0; i < _vaeImages.Count; i++)
            {
                Tensor image = _vaeImages[i];
                padded[i].narrow(1, 0, image.shape[1]).narrow(2, 0, image.shape[2]).copy_(image);
            }
        }
        return new VaeImageFields(padded, [.. LatentShapes], torch.tensor(LatentPositionIds.ToArray()),
            torch.tensor(VaeTokenIndexes.ToArray()), torch.tensor(Timesteps.ToArray()), torch.tensor(MseLossIndexes.ToArray()))
        {
            PixelsPerLatentToken = _vaePixelsPerLatentToken,
        };
    }

    private VitImageFields? BuildVit()
    {
        if (_vitPatches.Count == 0) return null;
        return new VitImageFields(torch.cat(_vitPatches, 0), torch.tensor(VitPositionIds.ToArray()),
            torch.tensor(VitTokenIndexes.ToArray()), torch.tensor(VitTokenSeqlens.ToArray()));
    }

    private TextLossFields? BuildTextLoss()
    {
        if (LabelIds.Count == 0 && CeLossIndexes.Count == 0 && CeLossWeights.Count == 0) return null;
        return new TextLossFields(torch.tensor(LabelIds.ToArray()), torch.tensor(CeLossIndexes.ToArray()), torch.tensor(CeLossWeights.ToArray()));
    }
}
