using Bagel.Core.StateDicts;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Ema;

/// <summary>
/// The reference's EMA model: a second module instance (from a factory, since TorchSharp modules cannot be deep
/// copied) holding <c>ema = decay·ema + (1−decay)·param</c> after every optimizer step, only for parameters whose live
/// twin requires grad. Buffers are copied at creation and never averaged (the reference averages FSDP flat parameters
/// only). The copy is never trained: its parameters do not require grad and it stays in eval mode.
/// <para>
/// Fused (the default): the copy's parameters whose live twin requires grad are laid out in one flat buffer per dtype
/// and device, and each update runs one multiply-add per run of parameters that also lie end to end in the live model
/// (as <see cref="Optimization.FlatBufferAdamW"/> lays them out): one per buffer in a default run, the same bits as
/// the per-tensor update. Checkpoints are the same either way.
/// </para>
/// </summary>
public sealed class EmaModel : IExponentialMovingAverage, IFoldableEma, IDisposable
{
    /// <summary>File name in a checkpoint folder (the reference's layout).</summary>
    public const string FileName = "ema.safetensors";

    /// <summary>The reference's default decay (<c>ema=0.9999</c>): constant, no warm-up or bias correction.</summary>
    public const double DefaultDecay = 0.9999;

    private readonly (torch.Tensor Ema, torch.Tensor Live)[] _pairs;
    private FlatEmaLayout? _layout;

    private EmaModel(torch.nn.Module module, torch.nn.Module live, double decay)
    {
        Module = module;
        Decay = decay;
        Dictionary<string, Parameter> emaParams = module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pairs = new List<(torch.Tensor, torch.Tensor)>();
        foreach ((string name, Parameter parameter) in live.named_parameters())
        {
            if (!emaParams.Remove(name, out Parameter? twin))
                throw new EmaMismatchException($"The live model has parameter '{name}' but the EMA module from the factory does not. The factory must build the same architecture.");
            if (!twin.shape.SequenceEqual(parameter.shape))
                throw new EmaMismatchException($"Parameter '{name}' has shape [{string.Join(", ", parameter.shape)}] in the live model but [{string.Join(", ", twin.shape)}] in the EMA module.");
            pairs.Add((twin, parameter));
        }
        if (emaParams.Count > 0)
            throw new EmaMismatchException($"The EMA module has parameter '{emaParams.Keys.First()}' that the live model lacks.");
        _pairs = [.. pairs];
    }

    /// <summary>The EMA module (eval mode, no gradients).</summary>
    public torch.nn.Module Module { get; }

    /// <summary>The decay.</summary>
    public double Decay { get; }

    /// <summary>True when the update is fused (see the class remarks); false: one update per tensor.</summary>
    public bool Fused { get; private set; }

    /// <summary>
    /// Multiply-add operations the last <see cref="Update"/> took: one per flat run when fused, one per tensor otherwise;
    /// when <see cref="Optimization.OptimizerStepper"/> folded the update into the fused AdamW pass, the operations for
    /// the tensors that pass did not cover (0 when it covered them all).
    /// </summary>
    public int LastUpdateOperations { get; private set; }

    /// <summary>
    /// Builds the EMA copy with <paramref name="factory"/> and copies <paramref name="live"/>'s whole state dict into
    /// it (<c>ema = deepcopy(model)</c>). With <paramref name="fused"/> (default) the copy's averaged parameters are
    /// first moved into flat buffers, tensor by tensor (see the class remarks).
    /// </summary>
    public static EmaModel Create(torch.nn.Module live, Func<torch.nn.Module> factory, double decay = DefaultDecay, bool fused = true)
    {
        ArgumentNullException.ThrowIfNull(live);
        ArgumentNullException.ThrowIfNull(factory);
        EmaUpdate.CheckDecay(decay);
        torch.nn.Module module = factory();
        if (ReferenceEquals(module, live)) throw new ArgumentException("The factory returned the live module itself; it must build a new instance.", nameof(factory));
        try
        {
            // The copy lives where the live model does (factories build on the CPU).
            if (live.parameters().FirstOrDefault() is { } first && first.device.type != DeviceType.CPU) module.to(first.device);
            var ema = new EmaModel(module, live, decay) { Fused = fused };
            if (fused) ema._layout = FlatEmaLayout.Create(ema._pairs.Where(p => p.Live.requires_grad).Select(p => p.Ema), copyValues: false);
            ema.CopyFrom(live);
            foreach (Parameter parameter in module.parameters()) parameter.requires_grad = false;
            module.eval();
            return ema;
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>Copies every parameter and buffer of <paramref name="source"/> into the EMA module.</summary>
    public void CopyFrom(torch.nn.Module source)
    {
        ArgumentNullException.ThrowIfNull(source);
        Dictionary<string, torch.Tensor> target = Module.state_dict();
        using var noGrad = torch.no_grad();
        foreach ((string key, torch.Tensor value) in source.state_dict())
        {
            if (!target.TryGetValue(key, out torch.Tensor? destination))
                throw new EmaMismatchException($"The live model has state '{key}' but the EMA module does not.");
            destination.copy_(value);
        }
    }

    /// <summary>One EMA update after an optimizer step; returns how many parameters were averaged.</summary>
    public int Update()
    {
        (int tensors, int operations) = EmaUpdate.ApplyCounted(_pairs, Decay, Fused);
        LastUpdateOperations = operations;
        return tensors;
    }

    bool IFoldableEma.CanFold => Fused;

    IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> IFoldableEma.Pairs => _pairs;

    int IFoldableEma.UpdateRemaining(bool[] covered)
    {
        (int tensors, int operations) = EmaUpdate.ApplyRemaining(_pairs, covered, Decay, Fused);
        LastUpdateOperations = operations;
        return tensors;
    }

    /// <summary>Saves the EMA state dict to <paramref name="path"/> (safetensors, atomically).</summary>
    public void Save(string path, CancellationToken cancellationToken = default) =>
        StateDictSaver.SaveFile(Module, path, cancellationToken: cancellationToken);

    /// <summary>Loads EMA weights from <paramref name="path"/> (strict unless <paramref name="strict"/> is false, as the reference's non-strict load).</summary>
    public StateDictLoadReport Load(string path, bool strict = true, ILogger? logger = null, CancellationToken cancellationToken = default) =>
        StateDictLoader.Load(Module, path, new StateDictLoadOptions { Strict = strict, Logger = logger }, cancellationToken);

    /// <inheritdoc />
    public void LoadWeights(string path, Func<string, string?>? keyMap = null, ILogger? logger = null) =>
        StateDictLoader.Load(Module, path, new StateDictLoadOptions { Strict = false, KeyMap = keyMap, Logger = logger });

    /// <summary>Disposes the EMA module and its flat buffers.</summary>
    public void Dispose()
    {
        Module.Dispose();
        _layout?.Dispose();
    }
}
