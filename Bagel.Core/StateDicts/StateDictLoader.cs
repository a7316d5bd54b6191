using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Core.StateDicts;

/// <summary>
/// Loads a safetensors file or sharded checkpoint into an existing TorchSharp module. Names and shapes are compared
/// first; then each tensor is copied straight into the module's own parameter or buffer (converting the dtype, e.g.
/// a BF16 file into a float32 module, and moving it to the parameter's device) under no_grad, one tensor at a time,
/// so no second full copy of the model is ever made.
/// </summary>
public static class StateDictLoader
{
    /// <summary>Opens <paramref name="path"/> (see <see cref="SafeTensorsCheckpoint.Open"/>) and loads it into <paramref name="module"/>.</summary>
    /// <param name="module">The module to fill.</param>
    /// <param name="path">A .safetensors file, an index file, or a checkpoint folder.</param>
    /// <param name="options">Strictness, key map and logger; null uses the defaults (strict, no map).</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The load report.</returns>
    /// <exception cref="StateDictMismatchException">Strict and the keys or shapes do not line up (nothing loaded).</exception>
    public static StateDictLoadReport Load(torch.nn.Module module, string path, StateDictLoadOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(module);
        TorchRuntime.EnsureLoaded();
        using ISafeTensorsSource source = SafeTensorsCheckpoint.Open(path);
        return Load(module, source, options, cancellationToken);
    }

    /// <summary>Loads every tensor of <paramref name="source"/> into <paramref name="module"/>.</summary>
    /// <param name="module">The module to fill.</param>
    /// <param name="source">An open safetensors file or sharded checkpoint.</param>
    /// <param name="options">Strictness, key map and logger; null uses the defaults (strict, no map).</param>
    /// <param name="cancellationToken">Checked between tensors; a cancelled load leaves the module partly loaded.</param>
    /// <returns>The load report.</returns>
    /// <exception cref="StateDictMismatchException">Strict and the keys or shapes do not line up (nothing loaded).</exception>
    /// <exception cref="InvalidOperationException">The key map sends two source keys to the same module key.</exception>
    public static StateDictLoadReport Load(torch.nn.Module module, ISafeTensorsSource source, StateDictLoadOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(source);
        options ??= new StateDictLoadOptions();
        TorchRuntime.EnsureLoaded();

        Dictionary<string, torch.Tensor> target = module.state_dict();
        var plan = new List<(string SourceKey, string ModuleKey)>();
        var filledBy = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        var ignored = new List<string>();
        var misshapen = new List<StateDictShapeMismatch>();
        foreach (SafeTensorInfo info in source.Tensors)
        {
            string? moduleKey = options.KeyMap is null ? info.Name : options.KeyMap(info.Name);
            if (moduleKey is null)
            {
                ignored.Add(info.Name);
                continue;
            }
            if (!target.TryGetValue(moduleKey, out torch.Tensor? destination))
            {
                unexpected.Add(info.Name);
                continue;
            }
            if (!filledBy.TryAdd(moduleKey, info.Name))
                throw new InvalidOperationException(
                    $"The key map sends both '{filledBy[moduleKey]}' and '{info.Name}' of '{source.Location}' to module key '{moduleKey}'; each module key takes one source tensor.");
            if (!destination.shape.SequenceEqual(info.Shape))
            {
                misshapen.Add(new StateDictShapeMismatch(info.Name, moduleKey, info.Shape, destination.shape));
                continue;
            }
            plan.Add((info.Name, moduleKey));
        }
        List<string> missing = [.. target.Keys.Where(key => !filledBy.ContainsKey(key) && options.KeepModuleKey?.Invoke(key) != true).Order(StringComparer.Ordinal)];
        var report = new StateDictLoadReport(source.Location, [.. plan.Select(p => p.ModuleKey)], missing, unexpected, ignored, misshapen);
        if (options.Strict && !report.IsExactMatch)
            throw new StateDictMismatchException(report);

        foreach ((string sourceKey, string moduleKey) in plan)
        {
            cancellationToken.ThrowIfCancellationRequested();
            source.CopyInto(sourceKey, target[moduleKey]);
        }

        if (options.Logger is { } logger)
        {
            if (!report.IsExactMatch)
                StateDictLog.PartialLoad(logger, source.Location, plan.Count, missing.Count, string.Join(", ", missing),
                    unexpected.Count, string.Join(", ", unexpected), misshapen.Count, string.Join("; ", misshapen));
            else
                StateDictLog.Loaded(logger, plan.Count, source.Location, ignored.Count);
        }
        return report;
    }
}
