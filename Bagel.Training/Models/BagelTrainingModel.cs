using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Training.Models;

/// <summary>
/// The BAGEL composite as the trainer sees it: encodes the batch's padded images with the frozen VAE (no grad, sampled
/// posterior), runs the composite's packed forward and hands back the per-token CE (with its weights) and the
/// per-element MSE for the loss reduction. Noise comes from torch's global generator by default, whose state the
/// trainer checkpoints, so a resumed run draws the same noise.
/// </summary>
public sealed class BagelTrainingModel : ITrainableModel
{
    private readonly BagelModel _model;
    private readonly FluxAutoEncoder? _vae;
    private readonly Func<BagelModel> _createTwin;
    private readonly IRandomSource _noise;
    private readonly bool _vaeAutocast;

    /// <summary>Creates the adapter.</summary>
    /// <param name="model">The composite (its trainable parameters are what the optimizer updates).</param>
    /// <param name="vae">The frozen autoencoder; required when the model has <c>visual_gen</c>.</param>
    /// <param name="createTwin">Builds a second composite of the same configuration (the EMA copy).</param>
    /// <param name="noise">The source of the posterior noise and ε (default: torch's global generator).</param>
    public BagelTrainingModel(BagelModel model, FluxAutoEncoder? vae, Func<BagelModel> createTwin, IRandomSource? noise = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _createTwin = createTwin ?? throw new ArgumentNullException(nameof(createTwin));
        if (model.Config.VisualGen && vae is null)
            throw new ArgumentException("visual_gen is on, so the trainer needs the VAE to encode the target images; pass the FluxAutoEncoder.", nameof(vae));
        _vae = vae;
        _noise = noise ?? TorchGlobalRandomSource.Instance;
    }

    private BagelTrainingModel(BagelModel model, FluxAutoEncoder? vae, Func<BagelModel> createTwin, IRandomSource noise, bool vaeAutocast)
        : this(model, vae, createTwin, noise)
    {
        _vaeAutocast = vaeAutocast;
    }

    /// <summary>
    /// The same forward over <paramref name="workingCopy"/> (a <see cref="BagelModel"/> twin, e.g. the bf16 working copy
    /// of mixed precision), sharing the VAE and the noise source; the activation-checkpointing setting is carried over.
    /// When the copy is bf16 the VAE encode runs as the reference's under bf16 autocast
    /// (<see cref="FluxAutoEncoder.EncodeUnderBf16Autocast"/>): bf16 convolutions and attention, float32 GroupNorm and posterior.
    /// </summary>
    /// <param name="workingCopy">A composite of the same configuration.</param>
    /// <returns>The adapter over <paramref name="workingCopy"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="workingCopy"/> is not a <see cref="BagelModel"/>.</exception>
    public ITrainableModel ForWorkingCopy(nn.Module workingCopy)
    {
        if (workingCopy is not BagelModel copy)
            throw new ArgumentException($"The working copy must be a BagelModel (from CreateTwin); got {workingCopy?.GetType().Name ?? "null"}.", nameof(workingCopy));
        copy.LanguageModel.Model.GradientCheckpointing = _model.LanguageModel.Model.GradientCheckpointing;
        bool bf16 = copy.parameters().FirstOrDefault()?.dtype == ScalarType.BFloat16;
        return new BagelTrainingModel(copy, _vae, _createTwin, _noise, bf16);
    }

    /// <inheritdoc />
    public nn.Module Module => _model;

    /// <summary>The composite.</summary>
    public BagelModel Model => _model;

    /// <summary>The frozen autoencoder (null without <c>visual_gen</c>); validation images decode with it.</summary>
    public FluxAutoEncoder? Vae => _vae;

    /// <inheritdoc />
    public nn.Module CreateTwin() => _createTwin();

    /// <inheritdoc />
    public ModelLossOutputs Forward(PackedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        IReadOnlyList<Tensor>? latents = null;
        if (batch.Vae is not null && _model.Config.VisualGen)
        {
            using var noGrad = torch.no_grad();
            using IDisposable? autocast = _vaeAutocast ? FluxAutoEncoder.EncodeUnderBf16Autocast() : null;
            latents = _vae!.EncodePacked(batch, _noise, _model.Config.LatentPatchSize);
        }
        BagelForwardOutput output = _model.Forward(batch, latents, _noise);
        return new ModelLossOutputs(output.Ce, output.Ce is null ? null : batch.TextLoss?.CeLossWeights, output.Mse);
    }
}
