using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Models.Siglip;

/// <summary>Loads SigLIP weights into a <see cref="SiglipVisionModel"/>: from a Hugging Face SigLIP folder
/// (pre-training from parts, model.md §8.1) or from a BAGEL checkpoint (<c>vit_model.*</c>).</summary>
public static class SiglipCheckpointLoader
{
    /// <summary>
    /// Loads a Hugging Face SigLIP checkpoint by name (no <c>vit_model.</c> prefix): layers at index ≥ the tower's
    /// layer count (so400m's 27th), the pooling head and any text tower are ignored, and the conv-shaped patch weight
    /// is converted to its Linear form (<see cref="SiglipPatchEmbeddingConversion"/>). Every tensor of the tower must
    /// be in the file.
    /// </summary>
    /// <param name="model">The tower to fill (built with <see cref="SiglipVisionConfig.WithBagelOverrides"/>).</param>
    /// <param name="path">A .safetensors file, index file or model folder.</param>
    /// <param name="logger">Where the load summary goes; default nowhere.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The load report (the patch weight counts as loaded; ignored keys list what was skipped).</returns>
    /// <exception cref="SiglipCheckpointException">The file has unknown, missing or misshapen tensors (nothing is loaded then).</exception>
    public static StateDictLoadReport LoadHuggingFace(SiglipVisionModel model, string path, ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        using ISafeTensorsSource source = SafeTensorsCheckpoint.Open(path);
        Func<string, string?> names = SiglipCheckpointKeys.FromHuggingFace(model.Config.NumHiddenLayers);
        Dictionary<string, torch.Tensor> target = model.state_dict();
        const string patchKey = SiglipCheckpointKeys.PatchEmbeddingWeight;

        var problems = new List<string>();
        var unknown = source.Tensors.Select(t => names(t.Name)).Where(k => k is not null && !target.ContainsKey(k)).ToList();
        var missing = target.Keys.Where(k => !source.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0) problems.Add($"{unknown.Count} unknown tensor(s) [{string.Join(", ", unknown.Take(StateDictMismatchException.MaxNamesInMessage))}]");
        if (missing.Count > 0) problems.Add($"{missing.Count} missing tensor(s) [{string.Join(", ", missing.Take(StateDictMismatchException.MaxNamesInMessage))}]");
        torch.Tensor patchTarget = target[patchKey];
        long[] linearShape = [.. patchTarget.shape];
        long[] convShape = [linearShape[0], model.Config.NumChannels, model.Config.PatchSize, model.Config.PatchSize];
        if (source.Contains(patchKey) && source.GetInfo(patchKey).Shape is var storedShape && !storedShape.SequenceEqual(convShape) && !storedShape.SequenceEqual(linearShape))
            problems.Add($"'{patchKey}' is [{string.Join(", ", storedShape)}], expected the conv shape [{string.Join(", ", convShape)}] (or the Linear shape [{string.Join(", ", linearShape)}])");
        if (problems.Count == 0)
        {
            var misshapen = target.Keys.Where(k => k != patchKey && !source.GetInfo(k).Shape.SequenceEqual(target[k].shape)).ToList();
            if (misshapen.Count > 0)
                problems.Add($"misshapen tensor(s) [{string.Join(", ", misshapen.Take(StateDictMismatchException.MaxNamesInMessage).Select(k => $"{k}: file [{string.Join(", ", source.GetInfo(k).Shape)}], tower [{string.Join(", ", target[k].shape)}]"))}]");
        }
        if (problems.Count > 0)
            throw new SiglipCheckpointException(
                $"'{source.Location}' does not fit a SigLIP tower with {model.Config.NumHiddenLayers} layers, hidden {model.Config.HiddenSize}: {string.Join("; ", problems)}. "
                + "Check that the config.json used to build the tower belongs to this checkpoint.");

        var options = new StateDictLoadOptions { Strict = false, KeyMap = key => key == patchKey ? null : names(key), Logger = logger };
        StateDictLoadReport report = StateDictLoader.Load(model, source, options, cancellationToken);
        using (torch.no_grad())
        using (torch.Tensor stored = source.ReadTensor(patchKey))
        using (torch.Tensor linear = stored.dim() == 4 ? SiglipPatchEmbeddingConversion.ConvWeightToLinear(stored) : stored.alias())
            patchTarget.copy_(linear);
        return report with
        {
            LoadedKeys = [.. report.LoadedKeys, patchKey],
            MissingKeys = [.. report.MissingKeys.Where(k => k != patchKey)],
            IgnoredKeys = [.. report.IgnoredKeys.Where(k => k != patchKey)],
        };
    }

    /// <summary>Loads the <c>vit_model.*</c> tensors of a BAGEL checkpoint (<c>model.safetensors</c> /
    /// <c>ema.safetensors</c>, Linear-form patch weight); other parts of the file are ignored.</summary>
    /// <param name="model">The tower to fill.</param>
    /// <param name="path">A .safetensors file, index file or checkpoint folder.</param>
    /// <param name="logger">Where the load summary goes; default nowhere.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The load report.</returns>
    /// <exception cref="SiglipCheckpointException">The file's <c>vit_model.*</c> tensors do not match the tower (nothing is loaded then).</exception>
    public static StateDictLoadReport LoadBagel(SiglipVisionModel model, string path, ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        var options = new StateDictLoadOptions { Strict = true, KeyMap = SiglipCheckpointKeys.FromBagel, Logger = logger };
        try
        {
            return StateDictLoader.Load(model, path, options, cancellationToken);
        }
        catch (StateDictMismatchException e)
        {
            throw new SiglipCheckpointException(
                $"The vit_model.* tensors of '{e.SourcePath}' do not fit a SigLIP tower with {model.Config.NumHiddenLayers} layers: {e.Message} "
                + "Build the tower from the checkpoint's vit_config.json with WithBagelOverrides().");
        }
    }
}
