using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Core.StateDicts;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>
/// The FLUX autoencoder (reference <c>AutoEncoder</c>, modeling/autoencoder.py) with the checkpoint's state-dict names
/// (<c>encoder.*</c>, <c>decoder.*</c>). Always frozen: the constructor turns off every parameter's gradient and puts
/// the module in eval mode, and encoding and decoding run under no_grad. <see cref="Encode(Tensor, IRandomSource)"/> samples the posterior (<see cref="Encode(Tensor, bool, IRandomSource?)"/> can take its mean instead)
/// and maps it to BAGEL's latent space, <c>scale·(z − shift)</c>; <see cref="Decode"/> undoes that map.
/// Computation runs in the parameters' dtype (float32 as loaded); the posterior sum is float32. Inside
/// <see cref="EncodeUnderBf16Autocast"/> the encoder runs as the reference's under bf16 autocast instead.
/// </summary>
public sealed class FluxAutoEncoder : nn.Module
{
    private readonly VaeEncoder _encoder;
    private readonly VaeDecoder _decoder;

    /// <summary>Creates a randomly initialized (PyTorch default init), frozen autoencoder.</summary>
    /// <param name="config">The shape; <see cref="FluxVaeConfig.Flux"/> for <c>ae.safetensors</c>.</param>
    /// <exception cref="FluxVaeException">The configuration is invalid.</exception>
    public FluxAutoEncoder(FluxVaeConfig config) : base(nameof(FluxAutoEncoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _encoder = new VaeEncoder(config);
        _decoder = new VaeDecoder(config);
        register_module("encoder", _encoder);
        register_module("decoder", _decoder);
        foreach (var parameter in parameters()) parameter.requires_grad = false;
        eval();
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>The shape this autoencoder was built with.</summary>
    public FluxVaeConfig Config { get; }

    /// <summary>The encoder (<c>encoder.*</c>).</summary>
    public VaeEncoder Encoder => _encoder;

    /// <summary>The decoder (<c>decoder.*</c>).</summary>
    public VaeDecoder Decoder => _decoder;

    /// <summary>Builds an autoencoder and loads <paramref name="path"/> (e.g. <c>ae.safetensors</c>) into it by the
    /// reference names, strictly (every key present, no extra keys, shapes equal), converting the file's dtype to
    /// float32.</summary>
    /// <param name="path">A .safetensors file, index file or checkpoint folder.</param>
    /// <param name="config">The shape; null means <see cref="FluxVaeConfig.Flux"/>.</param>
    /// <param name="logger">Receives the load report; null logs nothing.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The loaded, frozen autoencoder on the CPU.</returns>
    /// <exception cref="StateDictMismatchException">The file's keys or shapes do not match the configuration.</exception>
    public static FluxAutoEncoder Load(string path, FluxVaeConfig? config = null, ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var model = new FluxAutoEncoder(config ?? FluxVaeConfig.Flux);
        try
        {
            StateDictLoader.Load(model, path, new StateDictLoadOptions { Logger = logger }, cancellationToken);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Until the returned scope is disposed, encoding on this thread runs as the reference's VAE encode under
    /// <c>torch.amp.autocast(dtype=bfloat16)</c> with float32 weights (model.md §10): every convolution (and so the
    /// attention's q/k/v and the attention itself) in bf16 with bf16-cast weights, every GroupNorm as a float32 op
    /// (float32 output; the swish after it stays float32 until the next convolution casts), residual sums promoted
    /// as torch promotes them, the posterior mean/log-variance bf16, the posterior noise drawn in bf16, and
    /// exp(0.5·logvar) and the latent in float32. The weights are not changed. Scopes nest.
    /// </summary>
    /// <returns>The scope; dispose it to return to the parameters' dtype.</returns>
    public static IDisposable EncodeUnderBf16Autocast() => VaeLayers.EnterBf16Autocast();

    /// <summary>Runs the encoder only: images [B, 3, H, W] → moments [B, 2·z, H/f, W/f] (no sampling, no scaling).</summary>
    /// <param name="images">Images normalized to [−1, 1]; H and W multiples of <see cref="FluxVaeConfig.DownsampleFactor"/>.</param>
    /// <returns>The moments, in the module's dtype.</returns>
    public Tensor EncodeMoments(Tensor images)
    {
        CheckImages(images);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor input = images.to(ParameterDType, ParameterDevice);
        return _encoder.forward(input).MoveToOuterDisposeScope();
    }

    /// <summary>The reference's <c>encode</c>: encoder → sampled posterior (one standard normal tensor from
    /// <paramref name="random"/>) → <c>scale·(z − shift)</c>.</summary>
    /// <param name="images">Images [B, 3, H, W] normalized to [−1, 1]; H and W multiples of the downsample factor.</param>
    /// <param name="random">The posterior noise source (<see cref="RandomPurposes.VaePosteriorNoise"/>).</param>
    /// <returns>Latents [B, z, H/f, W/f], float32.</returns>
    public Tensor Encode(Tensor images, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(random);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor z = VaePosterior.Sample(EncodeMoments(images), random);
        return z.sub(Config.ShiftFactor).mul(Config.ScaleFactor).MoveToOuterDisposeScope();
    }

    /// <summary>The reference's <c>encode</c> with the posterior's <c>sample</c> flag: with <paramref name="sample"/> true
    /// it is <see cref="Encode(Tensor, IRandomSource)"/>; with false the latent is the posterior <b>mean</b> (the reference's
    /// <c>DiagonalGaussian(sample=False)</c>), deterministic and drawing nothing, then <c>scale·(mean − shift)</c>.</summary>
    /// <param name="images">Images [B, 3, H, W] normalized to [−1, 1]; H and W multiples of the downsample factor.</param>
    /// <param name="sample">Sample the posterior (true, as training does) or take its mean (false).</param>
    /// <param name="random">The posterior noise source; required when <paramref name="sample"/> is true, unused otherwise.</param>
    /// <returns>Latents [B, z, H/f, W/f], float32.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sample"/> is true and <paramref name="random"/> is null.</exception>
    public Tensor Encode(Tensor images, bool sample, IRandomSource? random = null)
    {
        if (sample) return Encode(images, random ?? throw new ArgumentNullException(nameof(random), "Sampling the VAE posterior needs a random source."));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor z = VaePosterior.Mean(EncodeMoments(images));
        return z.sub(Config.ShiftFactor).mul(Config.ScaleFactor).MoveToOuterDisposeScope();
    }

    /// <summary>Encodes a pack's zero-padded VAE images as one batch (the padding affects the values, as in the
    /// reference) and crops each latent to its own top-left region of (h·p) × (w·p) latent pixels, h × w being the
    /// image's token grid in <see cref="VaeImageFields.LatentShapes"/>.</summary>
    /// <param name="fields">The pack's generation fields.</param>
    /// <param name="random">The posterior noise source (one draw shaped like the padded batch's mean).</param>
    /// <param name="latentPatchSize">Latent pixels per token side, <c>latent_patch_size</c> (default 2).</param>
    /// <returns>One latent [z, h·p, w·p] (float32) per VAE image, in sequence order; the caller owns them.</returns>
    /// <exception cref="FluxVaeException">A token grid does not fit in the padded latent.</exception>
    public IReadOnlyList<Tensor> EncodePacked(VaeImageFields fields, IRandomSource random, int latentPatchSize = 2)
    {
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(latentPatchSize);
        using Tensor padded = Encode(fields.PaddedImages, random);
        var latents = new List<Tensor>(fields.ImageCount);
        for (int i = 0; i < fields.ImageCount; i++)
        {
            LatentGrid grid = fields.LatentShapes[i];
            long rows = (long)grid.Height * latentPatchSize, cols = (long)grid.Width * latentPatchSize;
            if (rows > padded.shape[2] || cols > padded.shape[3])
            {
                foreach (Tensor latent in latents) latent.Dispose();
                throw new FluxVaeException(
                    $"VAE image {i}: token grid {grid.Height}×{grid.Width} (patch {latentPatchSize}) needs a {rows}×{cols} latent, but the padded batch encodes to {padded.shape[2]}×{padded.shape[3]}. The padded images and latent shapes of the pack disagree.");
            }
            using Tensor image = padded[i];
            latents.Add(image[.., ..(int)rows, ..(int)cols].contiguous());
        }
        return latents;
    }

    /// <summary><see cref="EncodePacked(VaeImageFields, IRandomSource, int)"/> for a whole packed batch.</summary>
    /// <param name="batch">The pack; it must hold VAE images.</param>
    /// <param name="random">The posterior noise source.</param>
    /// <param name="latentPatchSize">Latent pixels per token side (default 2).</param>
    /// <returns>One cropped latent per VAE image, in sequence order; the caller owns them.</returns>
    /// <exception cref="FluxVaeException">The batch has no VAE images.</exception>
    public IReadOnlyList<Tensor> EncodePacked(PackedBatch batch, IRandomSource random, int latentPatchSize = 2)
    {
        ArgumentNullException.ThrowIfNull(batch);
        VaeImageFields fields = batch.Vae ?? throw new FluxVaeException(
            "The packed batch holds no VAE images (PackedBatch.Vae is null); encode only packs with generation images.");
        return EncodePacked(fields, random, latentPatchSize);
    }

    /// <summary>The reference's <c>decode</c>: <c>decoder(z / scale + shift)</c>.</summary>
    /// <param name="z">Latents [B, z, h, w] in BAGEL's latent space.</param>
    /// <returns>Images [B, 3, h·f, w·f], nominally in [−1, 1], in the module's dtype.</returns>
    public Tensor Decode(Tensor z)
    {
        ArgumentNullException.ThrowIfNull(z);
        if (z.dim() != 4 || z.shape[1] != Config.ZChannels)
            throw new FluxVaeException(
                $"VAE decode expects latents [B, {Config.ZChannels}, h, w]; got [{string.Join(", ", z.shape)}].");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor unscaled = z.to(ParameterDType, ParameterDevice).div(Config.ScaleFactor).add(Config.ShiftFactor);
        return _decoder.forward(unscaled).MoveToOuterDisposeScope();
    }

    private ScalarType ParameterDType => parameters().First().dtype;

    private Device ParameterDevice => parameters().First().device;

    private void CheckImages(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        int factor = Config.DownsampleFactor;
        if (images.dim() != 4 || images.shape[1] != Config.InChannels || images.shape[2] % factor != 0 || images.shape[3] % factor != 0)
            throw new FluxVaeException(
                $"VAE encode expects images [B, {Config.InChannels}, H, W] with H and W multiples of {factor}; got [{string.Join(", ", images.shape)}].");
    }
}
