using Bagel.Core.SafeTensors;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Ema;

/// <summary>
/// EMA as a list of tensors, for loops that do not want a second module: one cloned tensor per named live parameter,
/// averaged with <see cref="EmaUpdate"/> and saved as safetensors under the parameter names.
/// </summary>
public sealed class EmaTensors : IExponentialMovingAverage, IFoldableEma, IDisposable
{
    private readonly (string Name, torch.Tensor Ema, torch.Tensor Live)[] _entries;
    private readonly (torch.Tensor Ema, torch.Tensor Live)[] _pairs;
    private readonly FlatEmaLayout? _layout;

    /// <summary>
    /// Clones every parameter in <paramref name="parameters"/> as the starting EMA value. With <paramref name="fused"/>
    /// (default) the clones of the parameters that require grad are laid out in one flat buffer per dtype and device
    /// (filled tensor by tensor), and each update runs one multiply-add per run that also lies end to end in the live
    /// model (see <see cref="EmaUpdate"/>): the same bits as the per-tensor update.
    /// </summary>
    public EmaTensors(IEnumerable<(string Name, Parameter Parameter)> parameters, double decay = EmaModel.DefaultDecay, bool fused = true)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        EmaUpdate.CheckDecay(decay);
        Decay = decay;
        Fused = fused;
        using var noGrad = torch.no_grad();
        (string Name, Parameter Parameter)[] list = [.. parameters];
        if (fused)
        {
            // Empty tensors of the right shapes moved into the buffers, then filled from the parameters: no clone is ever whole.
            torch.Tensor[] emas = [.. list.Select(p => torch.empty_like(p.Parameter).DetachFromDisposeScope())];
            _layout = FlatEmaLayout.Create(emas.Where((_, i) => list[i].Parameter.requires_grad), copyValues: false);
            for (int i = 0; i < list.Length; i++) emas[i].copy_(list[i].Parameter);
            _entries = [.. list.Select((p, i) => (p.Name, emas[i], (torch.Tensor)p.Parameter))];
        }
        else
        {
            _entries = [.. list.Select(p => (p.Name, p.Parameter.detach().clone().DetachFromDisposeScope(), (torch.Tensor)p.Parameter))];
        }
        _pairs = [.. _entries.Select(e => (e.Ema, e.Live))];
    }

    /// <summary>The decay.</summary>
    public double Decay { get; }

    /// <summary>True when the update is fused (flat buffers); false: one update per tensor.</summary>
    public bool Fused { get; }

    /// <summary>The EMA tensor of <paramref name="name"/>.</summary>
    public torch.Tensor this[string name] =>
        _entries.FirstOrDefault(e => e.Name == name).Ema ?? throw new KeyNotFoundException($"No EMA tensor named '{name}'.");

    /// <summary>Parameter names, in order.</summary>
    public IEnumerable<string> Names => _entries.Select(e => e.Name);

    /// <summary>One EMA update; returns how many tensors were averaged.</summary>
    public int Update() => EmaUpdate.Apply(_pairs, Decay, Fused);

    bool IFoldableEma.CanFold => Fused;

    IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> IFoldableEma.Pairs => _pairs;

    int IFoldableEma.UpdateRemaining(bool[] covered) => EmaUpdate.ApplyRemaining(_pairs, covered, Decay, Fused).Tensors;

    /// <summary>Saves the EMA tensors to <paramref name="path"/> (safetensors, atomically).</summary>
    public void Save(string path, CancellationToken cancellationToken = default) =>
        SafeTensorsWriter.WriteFile(path, _entries.Select(e => PendingTensor.From(e.Name, e.Ema)), cancellationToken: cancellationToken);

    /// <summary>Loads every EMA tensor from <paramref name="path"/>; all names must be present.</summary>
    public void Load(string path)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(path);
        foreach ((string name, torch.Tensor ema, _) in _entries)
        {
            if (!reader.Contains(name)) throw new EmaMismatchException($"{path} has no tensor '{name}'.");
            reader.CopyInto(name, ema);
        }
    }

    /// <inheritdoc />
    public void LoadWeights(string path, Func<string, string?>? keyMap = null, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(path);
        var byName = _entries.ToDictionary(e => e.Name, e => e.Ema, StringComparer.Ordinal);
        foreach (SafeTensorInfo info in reader.Tensors)
        {
            string? name = keyMap is null ? info.Name : keyMap(info.Name);
            if (name is not null && byName.TryGetValue(name, out torch.Tensor? ema)) reader.CopyInto(info.Name, ema);
        }
    }

    /// <summary>Disposes the EMA tensors.</summary>
    public void Dispose()
    {
        foreach ((_, torch.Tensor ema, _) in _entries) ema.Dispose();
        _layout?.Dispose();
    }
}
