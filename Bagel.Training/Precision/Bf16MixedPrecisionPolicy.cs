using Bagel.Training.Loop;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Precision;

/// <summary>
/// The reference's FSDP <c>MixedPrecision(param_dtype=bf16, reduce_dtype=bf16, buffer_dtype=bf16)</c> under bf16
/// autocast, in one process (model.md §10, docs/precision.md). TorchSharp has no autocast, so the policy keeps a
/// bfloat16 working copy of the model (built with <see cref="ITrainableModel.CreateTwin"/>, cast to bf16, run through
/// <see cref="ITrainableModel.ForWorkingCopy"/>): its parameters and buffers are the bf16 casts of the float32 master
/// parameters, refreshed after every optimizer step as FSDP re-casts its flat parameters before each forward. After
/// each backward the bf16 gradients are added into float32 gradients of the master parameters (as FSDP casts the
/// bf16-reduced gradient into the fp32 flat parameter's <c>.grad</c>), so gradient accumulation, clipping, AdamW (float32
/// moments) and the EMA (float32) all run on float32 tensors, unchanged from fp32 training.
/// </summary>
/// <remarks>Memory per parameter over fp32 training: +2 bytes (the bf16 working weight) and, during backward only,
/// +2 bytes (its bf16 gradient, freed after <see cref="AfterBackward"/>); activations are half the size.</remarks>
public sealed class Bf16MixedPrecisionPolicy : IPrecisionPolicy
{
    private readonly torch.nn.Module _working;
    private readonly (torch.Tensor Master, torch.Tensor Working)[] _trainable;
    private readonly (torch.Tensor Master, torch.Tensor Working)[] _all;
    private bool _stale = true;
    private bool _allStale = true;

    /// <summary>Builds the bf16 working copy of <paramref name="master"/> on the device of its parameters.</summary>
    /// <param name="master">The model whose float32 parameters are the master weights.</param>
    /// <exception cref="ArgumentException">A floating-point parameter of the master model is not float32, or the twin does
    /// not have the master's parameters.</exception>
    /// <exception cref="NotSupportedException">The model does not implement <see cref="ITrainableModel.ForWorkingCopy"/>.</exception>
    public Bf16MixedPrecisionPolicy(ITrainableModel master)
    {
        MasterModel = master ?? throw new ArgumentNullException(nameof(master));
        torch.nn.Module masterModule = master.Module;
        Dictionary<string, Parameter> masterParameters = masterModule.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach ((string name, Parameter parameter) in masterParameters)
        {
            if (parameter.is_floating_point() && parameter.dtype != torch.ScalarType.Float32)
                throw new ArgumentException(
                    $"bf16 mixed precision keeps float32 master weights, but the model's parameter '{name}' is {parameter.dtype}. " +
                    "Build or load the model in float32 (do not call .to(bfloat16) on it); the bf16 copy is made here.", nameof(master));
        }

        torch.nn.Module working = master.CreateTwin();
        try
        {
            if (ReferenceEquals(working, masterModule))
                throw new ArgumentException("CreateTwin returned the model itself; it must build a new instance.", nameof(master));
            if (masterParameters.Values.FirstOrDefault() is { } first && first.device.type != DeviceType.CPU) working.to(first.device);
            working.to(torch.ScalarType.BFloat16);
            working.train(masterModule.training);
            var trainable = new List<(torch.Tensor, torch.Tensor)>();
            var all = new List<(torch.Tensor, torch.Tensor)>();
            var workingParameters = working.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach ((string name, Parameter parameter) in masterParameters)
            {
                if (!workingParameters.Remove(name, out Parameter? twin) || !twin.shape.SequenceEqual(parameter.shape))
                    throw new ArgumentException($"The model's twin lacks parameter '{name}' of shape [{string.Join(", ", parameter.shape)}]; CreateTwin must build the same architecture.", nameof(master));
                twin.requires_grad = parameter.requires_grad;
                all.Add((parameter, twin));
                if (parameter.requires_grad) trainable.Add((parameter, twin));
            }
            if (workingParameters.Count > 0)
                throw new ArgumentException($"The model's twin has parameter '{workingParameters.Keys.First()}' that the model lacks.", nameof(master));
            var workingBuffers = working.named_buffers().ToDictionary(b => b.name, b => b.buffer);
            foreach ((string name, torch.Tensor buffer) in masterModule.named_buffers())
            {
                if (workingBuffers.TryGetValue(name, out torch.Tensor? twin)) all.Add((buffer, twin));
            }
            _trainable = [.. trainable];
            _all = [.. all];
            ComputeModel = master.ForWorkingCopy(working);
            _working = working;
        }
        catch
        {
            working.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public TrainingPrecision Precision => TrainingPrecision.Bf16Mixed;

    /// <inheritdoc />
    public ITrainableModel MasterModel { get; }

    /// <inheritdoc />
    public ITrainableModel ComputeModel { get; }

    /// <summary>The bf16 working copy (its parameters are overwritten from the masters before each forward).</summary>
    public torch.nn.Module WorkingModule => _working;

    /// <inheritdoc />
    public void BeforeForward()
    {
        if (!_stale && !_allStale) return;
        using var noGrad = torch.no_grad();
        foreach ((torch.Tensor master, torch.Tensor working) in _allStale ? _all : _trainable)
            working.copy_(master); // the round-to-nearest-even cast FSDP applies to its flat parameters
        _stale = _allStale = false;
    }

    /// <inheritdoc />
    public void AfterBackward()
    {
        using var noGrad = torch.no_grad();
        foreach ((torch.Tensor master, torch.Tensor working) in _trainable)
        {
            using torch.Tensor? workingGrad = working.grad;
            if (workingGrad is null) continue;
            using (torch.Tensor? masterGrad = master.grad)
            {
                if (masterGrad is null)
                {
                    using torch.Tensor converted = workingGrad.to(torch.ScalarType.Float32);
                    master.grad = converted;
                }
                else
                {
                    masterGrad.add_(workingGrad); // bf16 gradient accumulated in float32
                }
            }
            working.grad = null; // freed until the next backward, as zero_grad(set_to_none=True)
        }
        _stale = true; // an optimizer step may follow
    }

    /// <inheritdoc />
    public void MasterWeightsChanged() => _stale = _allStale = true;

    /// <summary>Disposes the working copy (not the master model).</summary>
    public void Dispose() => _working.Dispose();
}
