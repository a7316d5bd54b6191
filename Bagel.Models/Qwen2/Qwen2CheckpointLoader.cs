using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>Loads a Hugging Face Qwen2 folder into a BAGEL backbone (pre-training from parts, model.md §8.1).</summary>
public static class Qwen2CheckpointLoader
{
    /// <summary>
    /// Loads the <c>model.*</c> / <c>lm_head.weight</c> tensors of a Hugging Face Qwen2 checkpoint by name. Tensors the
    /// file cannot hold keep their initial values, as in the reference: every <c>*_moe_gen</c> tensor, the QK norms
    /// (Qwen2.5 has none, so they stay 1) and <c>lm_head.weight</c> when the file ties it to the embedding (it then stays
    /// random N(0, σ), it is NOT copied from the embedding). Then, when <paramref name="copyInitMoe"/>, the gen experts
    /// are copied from their und twins (<see cref="Qwen2Initialization.CopyUnderstandingToGeneration"/>).
    /// </summary>
    /// <param name="model">The model to fill (built with BAGEL's overrides).</param>
    /// <param name="path">A .safetensors file, index file or model folder.</param>
    /// <param name="copyInitMoe">The reference's <c>copy_init_moe</c>; default true.</param>
    /// <param name="logger">Where the load summary goes; default nowhere.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The load report (its missing keys are the ones left at their initial values).</returns>
    /// <exception cref="Qwen2CheckpointException">The file has unknown or misshapen tensors, or lacks a tensor it must
    /// hold (nothing is loaded then).</exception>
    public static StateDictLoadReport LoadHuggingFace(Qwen2ForCausalLM model, string path, bool copyInitMoe = true,
        ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        using ISafeTensorsSource source = SafeTensorsCheckpoint.Open(path);
        Dictionary<string, long[]> moduleShapes = model.state_dict().ToDictionary(p => p.Key, p => p.Value.shape);
        HashSet<string> moduleKeys = [.. moduleShapes.Keys];
        var fileKeys = new HashSet<string>(StringComparer.Ordinal);
        var unknown = new List<string>();
        var misshapen = new List<string>();
        foreach (SafeTensorInfo info in source.Tensors)
        {
            string? key = Qwen2CheckpointKeys.FromHuggingFace(info.Name);
            if (key is null) continue;
            if (!moduleKeys.Contains(key))
            {
                unknown.Add(info.Name);
                continue;
            }
            fileKeys.Add(key);
            if (!info.Shape.SequenceEqual(moduleShapes[key]))
                misshapen.Add($"{info.Name} [{string.Join(", ", info.Shape)}] vs module [{string.Join(", ", moduleShapes[key])}]");
        }
        if (misshapen.Count > 0)
            throw new Qwen2CheckpointException(
                $"'{source.Location}' holds misshapen tensors: {string.Join("; ", misshapen.Take(StateDictMismatchException.MaxNamesInMessage))}. Check the config.json (hidden, heads, vocab sizes).");
        List<string> required = [.. moduleKeys.Where(k => !fileKeys.Contains(k) && !MayBeAbsent(k)).Order(StringComparer.Ordinal)];
        if (unknown.Count > 0 || required.Count > 0)
            throw new Qwen2CheckpointException(
                $"'{source.Location}' does not fit {model.Config.LayerModule} with {model.Config.NumHiddenLayers} layers: "
                + $"{unknown.Count} unknown tensor(s) [{string.Join(", ", unknown.Take(StateDictMismatchException.MaxNamesInMessage))}], "
                + $"{required.Count} missing tensor(s) [{string.Join(", ", required.Take(StateDictMismatchException.MaxNamesInMessage))}]. "
                + "Check that the config.json used to build the model belongs to this checkpoint.");

        var options = new StateDictLoadOptions { Strict = false, KeyMap = Qwen2CheckpointKeys.FromHuggingFace, Logger = logger };
        StateDictLoadReport report = StateDictLoader.Load(model, source, options, cancellationToken);
        if (report.Misshapen.Count > 0)
            throw new Qwen2CheckpointException(
                $"'{source.Location}' holds misshapen tensors: {string.Join("; ", report.Misshapen)}. Check the config.json (hidden, heads, vocab sizes).");
        if (copyInitMoe) Qwen2Initialization.CopyUnderstandingToGeneration(model);
        return report;
    }

    /// <summary>Module keys a Hugging Face Qwen2 file may lack (left at their initial values).</summary>
    /// <param name="moduleKey">A state-dict key of <see cref="Qwen2ForCausalLM"/>.</param>
    /// <returns>True for gen experts, QK norms and the (possibly tied) lm_head.</returns>
    public static bool MayBeAbsent(string moduleKey)
    {
        ArgumentNullException.ThrowIfNull(moduleKey);
        return moduleKey.Contains(Qwen2Initialization.GenExpertMarker, StringComparison.Ordinal)
            || moduleKey.EndsWith(".q_norm.weight", StringComparison.Ordinal)
            || moduleKey.EndsWith(".k_norm.weight", StringComparison.Ordinal)
            || moduleKey == "lm_head.weight";
    }
}
