using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Models.Bagel;

/// <summary>Fills a <see cref="BagelModel"/>: from separate parts (pre-training, model.md §8.1) or from a full BAGEL
/// checkpoint (<c>model.safetensors</c> / <c>ema.safetensors</c>, §8.2).</summary>
public static class BagelCheckpointLoader
{
    /// <summary>
    /// Loads the parts of a model built with <see cref="BagelModel"/>'s fresh glue modules: the Hugging Face Qwen2
    /// weights (tied embeddings leave <c>lm_head</c> random; gen experts copied from und experts when
    /// <paramref name="copyInitMoe"/>) and, with the understanding branch, the Hugging Face SigLIP weights (layers past
    /// the tower's count ignored, conv patch weight converted to Linear). The glue modules keep their initial values.
    /// </summary>
    /// <param name="model">The model to fill.</param>
    /// <param name="llmPath">The Qwen2 .safetensors file, index or folder (<c>llm_path</c>).</param>
    /// <param name="vitPath">The SigLIP file or folder (<c>vit_path</c>); required when the model has the understanding branch.</param>
    /// <param name="copyInitMoe">The reference's <c>copy_init_moe</c> (default true).</param>
    /// <param name="logger">Where the load summaries go; default nowhere.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The LLM report, then the SigLIP report when loaded.</returns>
    /// <exception cref="ArgumentException">The model has a ViT but no <paramref name="vitPath"/> was given.</exception>
    /// <exception cref="Qwen2CheckpointException">The Qwen2 file does not fit.</exception>
    /// <exception cref="SiglipCheckpointException">The SigLIP file does not fit.</exception>
    public static IReadOnlyList<StateDictLoadReport> LoadParts(BagelModel model, string llmPath, string? vitPath, bool copyInitMoe = true,
        ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(llmPath);
        if (model.VitModel is not null && vitPath is null)
            throw new ArgumentException("The model has an understanding branch (visual_und), so a SigLIP checkpoint path is required.", nameof(vitPath));
        var reports = new List<StateDictLoadReport>
        {
            Qwen2CheckpointLoader.LoadHuggingFace(model.LanguageModel, llmPath, copyInitMoe, logger, cancellationToken),
        };
        if (model.VitModel is { } vit)
            reports.Add(SiglipCheckpointLoader.LoadHuggingFace(vit, vitPath!, logger, cancellationToken));
        return reports;
    }

    /// <summary>
    /// Loads a full BAGEL checkpoint by the reference's names. <c>latent_pos_embed.pos_embed</c> and
    /// <c>vit_pos_embed.pos_embed</c> in the file are ignored and the tables recomputed (as the reference drops them);
    /// every other model tensor must be in the file with the same shape, and the file may hold nothing else. Problems
    /// are reported together before anything is loaded.
    /// </summary>
    /// <param name="model">The model to fill.</param>
    /// <param name="path">A .safetensors file (<c>model.safetensors</c>, <c>ema.safetensors</c>), index or folder.</param>
    /// <param name="logger">Where the load summary goes; default nowhere.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The load report (the tables appear as ignored source keys and missing module keys).</returns>
    /// <exception cref="BagelCheckpointException">Unknown, missing or misshapen tensors.</exception>
    public static StateDictLoadReport LoadBagel(BagelModel model, string path, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        using ISafeTensorsSource source = SafeTensorsCheckpoint.Open(path);
        HashSet<string> tables = [.. new[] { "latent_pos_embed.pos_embed", "vit_pos_embed.pos_embed" }];
        Dictionary<string, torch.Tensor> target = model.state_dict();
        string? KeyMap(string key) => tables.Contains(key) ? null : key;

        var unknown = new List<string>();
        var misshapen = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (SafeTensorInfo info in source.Tensors)
        {
            if (KeyMap(info.Name) is not { } key) continue;
            if (!target.TryGetValue(key, out torch.Tensor? destination)) unknown.Add(key);
            else if (!destination.shape.SequenceEqual(info.Shape))
                misshapen.Add($"{key}: file [{string.Join(", ", info.Shape)}], model [{string.Join(", ", destination.shape)}]");
            seen.Add(key);
        }
        List<string> missing = [.. target.Keys.Where(k => !tables.Contains(k) && !seen.Contains(k)).Order(StringComparer.Ordinal)];
        if (unknown.Count > 0 || missing.Count > 0 || misshapen.Count > 0)
        {
            int shown = StateDictMismatchException.MaxNamesInMessage;
            throw new BagelCheckpointException(
                $"'{source.Location}' does not fit this BAGEL model (visual_gen {model.Config.VisualGen}, visual_und {model.Config.VisualUnd}, "
                + $"{model.Config.LlmConfig.LayerModule} with {model.Config.LlmConfig.NumHiddenLayers} layers): "
                + $"{unknown.Count} unknown tensor(s) [{string.Join(", ", unknown.Take(shown))}], "
                + $"{missing.Count} missing tensor(s) [{string.Join(", ", missing.Take(shown))}], "
                + $"{misshapen.Count} misshapen tensor(s) [{string.Join("; ", misshapen.Take(shown))}]. "
                + "Build the model from the checkpoint's llm_config.json / vit_config.json (ViT with WithBagelOverrides) and the same visual_gen / visual_und / max_latent_size.");
        }

        var options = new StateDictLoadOptions { Strict = false, KeyMap = KeyMap, Logger = logger };
        StateDictLoadReport report = StateDictLoader.Load(model, source, options, cancellationToken);
        model.ResetPositionTables();
        return report;
    }
}
