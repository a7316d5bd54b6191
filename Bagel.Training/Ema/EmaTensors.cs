using Bagel.Core.SafeTensors;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Ema;

/// <summary>
/// EMA as a list of tensors, for loops that do not want a second module: one cloned tensor per named live parameter,
/// averaged with <see cref="EmaUpdate"/> and saved as safetensors under the parameter names.
/// </summary>
public sealed class EmaTensors : IExponentialMovingAverage, IDisposable
{
    private readonly (string Name, torch.Tensor Ema, torch.Tensor Live)[] _entries;

    /// <summary>Clones every parameter in <paramref name="parameters"/> as the starting EMA value.</summary>
    public EmaTensors(IEnumerable<(string Name, Parameter Parameter)> parameters, double decay = EmaModel.DefaultDecay)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        EmaUpdate.CheckDecay(decay);
        Decay = decay;
        using var noGrad = torch.no_grad();
        _entries = [.. parameters.Select(p => (p.Name, p.Parameter.detach().clone().DetachFromDisposeScope(), (torch.Tensor)p.Parameter))];
    }

    /// <summary>The decay.</summary>
    public double Decay { get; }

    /// <summary>The EMA tensor of <paramref name="name"/>.</summary>
    public torch.Tensor this[string name] =>
        _entries.FirstOrDefault(e => e.Name == name).Ema ?? throw new KeyNotFoundException($"No EMA tensor named '{name}'.");

    /// <summary>Parameter names, in order.</summary>
    public IEnumerable<string> Names => _entries.Select(e => e.Name);

    /// <summary>One EMA update; returns how many tensors were averaged.</summary>
    public int Update() => EmaUpdate.Apply([.. _entries.Select(e => (e.Ema, e.Live))], Decay);

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
    }
}
