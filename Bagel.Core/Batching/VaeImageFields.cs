using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Batching;

/// <summary>
/// The generation fields of a packed batch (present only when the batch holds at least one VAE image). V = Σ h·w
/// latent tokens over all VAE images; M = the noisy ones. Owns its tensors.
/// </summary>
public sealed class VaeImageFields : IDisposable
{
    /// <summary>Creates the group, taking ownership of the tensors.</summary>
    /// <param name="paddedImages"><c>padded_images</c>.</param>
    /// <param name="latentShapes"><c>patchified_vae_latent_shapes</c>.</param>
    /// <param name="packedLatentPositionIds"><c>packed_latent_position_ids</c>.</param>
    /// <param name="packedVaeTokenIndexes"><c>packed_vae_token_indexes</c>.</param>
    /// <param name="packedTimesteps"><c>packed_timesteps</c>.</param>
    /// <param name="mseLossIndexes"><c>mse_loss_indexes</c>.</param>
    public VaeImageFields(Tensor paddedImages, IReadOnlyList<LatentGrid> latentShapes, Tensor packedLatentPositionIds,
        Tensor packedVaeTokenIndexes, Tensor packedTimesteps, Tensor mseLossIndexes)
    {
        PaddedImages = paddedImages ?? throw new ArgumentNullException(nameof(paddedImages));
        LatentShapes = latentShapes ?? throw new ArgumentNullException(nameof(latentShapes));
        PackedLatentPositionIds = packedLatentPositionIds ?? throw new ArgumentNullException(nameof(packedLatentPositionIds));
        PackedVaeTokenIndexes = packedVaeTokenIndexes ?? throw new ArgumentNullException(nameof(packedVaeTokenIndexes));
        PackedTimesteps = packedTimesteps ?? throw new ArgumentNullException(nameof(packedTimesteps));
        MseLossIndexes = mseLossIndexes ?? throw new ArgumentNullException(nameof(mseLossIndexes));
    }

    /// <summary>The image pixels per latent token side when none is given: FLUX's 8× downsampling × latent patch 2.</summary>
    public const int DefaultPixelsPerLatentToken = 16;

    /// <summary>Image pixels per latent token side: the VAE's downsampling × <c>latent_patch_size</c> (default
    /// <see cref="DefaultPixelsPerLatentToken"/>). A latent grid (h, w) covers h·this × w·this pixels of its padded image.</summary>
    public int PixelsPerLatentToken
    {
        get => _pixelsPerLatentToken;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            _pixelsPerLatentToken = value;
        }
    }

    private readonly int _pixelsPerLatentToken = DefaultPixelsPerLatentToken;

    /// <summary><c>padded_images</c>: [Nvae, 3, Hmax, Wmax] float32, every VAE image (clean and noisy) in sequence
    /// order, normalized to [−1, 1] and zero-padded at the bottom/right (0 = mid-grey). Stays fp32 under bf16
    /// training; the model casts. The VAE encodes these to the latents.</summary>
    public Tensor PaddedImages { get; }

    /// <summary><c>patchified_vae_latent_shapes</c>: one (h, w) = (H/s, W/s) token grid, s = <see cref="PixelsPerLatentToken"/>, per VAE image, in order.</summary>
    public IReadOnlyList<LatentGrid> LatentShapes { get; }

    /// <summary><c>packed_latent_position_ids</c>: [V] int64, <c>row·max_latent_size + col</c> per latent token
    /// (row-major per image), indexing the latent sin-cos table; with <c>interpolate_pos</c> the rows and columns are
    /// the image's fractional coordinates bucketed onto the max_latent_size grid instead.</summary>
    public Tensor PackedLatentPositionIds { get; }

    /// <summary><c>packed_vae_token_indexes</c>: [V] int64, strictly ascending sequence positions of the latent slots.</summary>
    public Tensor PackedVaeTokenIndexes { get; }

    /// <summary><c>packed_timesteps</c>: [V] float32, the raw N(0,1) draw of each noisy image repeated over its tokens,
    /// −inf for clean (conditioning) images (sigmoid → t = 0).</summary>
    public Tensor PackedTimesteps { get; }

    /// <summary><c>mse_loss_indexes</c>: [M] int64, strictly ascending positions of the noisy latent slots (exactly the
    /// latent slots with a finite timestep). May be empty when every VAE image is clean.</summary>
    public Tensor MseLossIndexes { get; }

    /// <summary>The number of VAE images, Nvae.</summary>
    public int ImageCount => LatentShapes.Count;

    /// <summary>Copies the group to <paramref name="device"/> (dtypes unchanged).</summary>
    /// <param name="device">The target device.</param>
    /// <param name="nonBlocking">Asynchronous copy (effective from pinned host memory to CUDA).</param>
    /// <returns>A new group owning the copies.</returns>
    public VaeImageFields To(Device device, bool nonBlocking = false) => Map(t => t.to(device, non_blocking: nonBlocking));

    /// <summary>A new group whose tensors are <paramref name="map"/> of these (e.g. a copy to a device or into pinned memory).</summary>
    internal VaeImageFields Map(Func<Tensor, Tensor> map) => new(
        map(PaddedImages), LatentShapes, map(PackedLatentPositionIds), map(PackedVaeTokenIndexes), map(PackedTimesteps), map(MseLossIndexes))
    {
        PixelsPerLatentToken = PixelsPerLatentToken,
    };

    /// <summary>The tensors, with their reference names.</summary>
    internal IEnumerable<(string Name, Tensor Tensor)> Tensors()
    {
        yield return ("padded_images", PaddedImages);
        yield return ("packed_latent_position_ids", PackedLatentPositionIds);
        yield return ("packed_vae_token_indexes", PackedVaeTokenIndexes);
        yield return ("packed_timesteps", PackedTimesteps);
        yield return ("mse_loss_indexes", MseLossIndexes);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach ((_, Tensor tensor) in Tensors()) tensor.Dispose();
    }
}
