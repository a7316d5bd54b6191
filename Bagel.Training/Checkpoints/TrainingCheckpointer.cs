using Bagel.Core.DataStatus;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Training.Checkpoints;

/// <summary>
/// Saves every stateful piece of a run as one checkpoint folder and restores them from a <see cref="ResumePlan"/>:
/// the glue between the loop and <see cref="CheckpointWriter"/>, independent of the model's architecture.
/// <para>
/// Weights are restored strictly, a deliberate fix of a reference quirk (training.md 5.7 and pain point #3 in section 7):
/// the reference loads with <c>strict=False</c> and only logs missing keys, so a fine-tune whose file did not fit
/// silently started from random weights (loss ≈ 11). Here every tensor of the model must be in the file with the same
/// shape, or <see cref="Restore"/> throws a <see cref="CheckpointException"/> naming the missing, unexpected and
/// misshapen tensors before anything is loaded. The rebuilt sin-cos tables (<c>*_pos_embed.pos_embed</c>) stay
/// dropped, as in the reference. File tensors of a whole branch the model does not have (a top-level module such as
/// <c>vit_model</c> or <c>vae2llm</c> absent because <c>visual_und</c> or <c>visual_gen</c> is off) are skipped with a
/// log line, so a T2I-only or VLM-only fine-tune can start from a full BAGEL checkpoint.
/// </para>
/// </summary>
public sealed partial class TrainingCheckpointer
{
    private readonly CheckpointWriter _writer;
    private readonly TrainingComponents _components;
    private readonly ILogger? _logger;
    private readonly TimeProvider _time;

    /// <summary>Creates the checkpointer; <paramref name="timeProvider"/> stamps <see cref="TrainState.SavedAt"/> (default the system clock).</summary>
    public TrainingCheckpointer(CheckpointWriter writer, TrainingComponents components, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _components = components ?? throw new ArgumentNullException(nameof(components));
        _logger = logger;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Writes the checkpoint of <see cref="TrainProgress.CompletedSteps"/> with the data status, if any.</summary>
    public CheckpointInfo Save(TrainProgress progress, DataStatusDocument? dataStatus = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(progress);
        var parts = new List<CheckpointPart>
        {
            CheckpointPart.Model(_components.Model),
            CheckpointPart.Optimizer(_components.Optimizer),
            CheckpointPart.Scheduler(_components.Scheduler),
            CheckpointPart.Rng(_components.Streams),
        };
        if (_components.Ema is { } ema) parts.Add(CheckpointPart.Ema(ema));
        if (dataStatus is not null) parts.Add(CheckpointPart.DataStatus(dataStatus with { Step = progress.CompletedSteps }));
        if (_components.RunInfo is { } info) parts.Add(CheckpointPart.RunInfo(info));
        var state = new TrainState(TrainState.CurrentFormatVersion, progress.CompletedSteps, _components.Guard?.TotalSkipped ?? 0,
            _components.Guard?.ConsecutiveSkipped ?? 0, progress.TokensSeen, progress.SamplesSeen, _time.GetUtcNow());
        return _writer.Save(state, parts, cancellationToken);
    }

    /// <summary>Loads what <paramref name="plan"/> says into the components.</summary>
    /// <exception cref="CheckpointException">A file the plan needs is missing or does not fit.</exception>
    public RestoreResult Restore(ResumePlan plan, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Kind == ResumeKind.Scratch || plan.ModelWeightsFile is null) return new RestoreResult(0, null, null, null);

        StateDictLoadReport report = LoadStrictly(_components.Model, plan.ModelWeightsFile, "model", cancellationToken);
        if (_components.Ema is { } ema && plan.EmaWeightsFile is not null)
        {
            if (ema is EmaModel emaModel) LoadStrictly(emaModel.Module, plan.EmaWeightsFile, "EMA copy", cancellationToken);
            else ema.LoadWeights(plan.EmaWeightsFile, DropRebuiltKeys, _logger); // an application's EMA checks its own file
        }
        if (!plan.LoadsTrainState) return new RestoreResult(plan.StartStep, null, null, report);

        TrainState state = TrainState.Read(plan.TrainStateFile(CheckpointLayout.TrainStateFileName));
        AdamWStateFile.Load(_components.Optimizer, plan.TrainStateFile(CheckpointLayout.OptimizerFileName));
        _components.Scheduler.Load(plan.TrainStateFile(CheckpointLayout.SchedulerFileName));
        if (_components.Scheduler.NextStep != state.CompletedSteps)
            throw new CheckpointException($"{plan.Folder}: the scheduler is at step {_components.Scheduler.NextStep} but the train state says {state.CompletedSteps} steps were completed.");
        string rng = plan.TrainStateFile(CheckpointLayout.RngStateFileName);
        if (File.Exists(rng)) RngStateDocument.Read(rng).Restore(_components.Streams);
        _components.Guard?.Restore(state.SkippedNonFiniteSteps, state.ConsecutiveNonFiniteSteps);
        string data = plan.TrainStateFile(CheckpointLayout.DataStatusFileName);
        DataStatusDocument? dataStatus = File.Exists(data) ? DataStatusFile.Read(data, _logger) : null;
        return new RestoreResult(state.NextStepIndex, state, dataStatus, report);
    }

    /// <summary>Checks <paramref name="file"/> against <paramref name="module"/> from the header alone, then loads it.</summary>
    /// <exception cref="CheckpointException">Missing, unexpected or misshapen tensors (nothing loaded).</exception>
    private StateDictLoadReport LoadStrictly(torch.nn.Module module, string file, string role, CancellationToken cancellationToken)
    {
        Dictionary<string, torch.Tensor> target = module.state_dict();
        HashSet<string> branches = [.. module.named_children().Select(child => child.name)];
        var missing = new List<string>();
        var unexpected = new List<string>();
        var misshapen = new List<string>();
        var skippedBranches = new SortedSet<string>(StringComparer.Ordinal);
        using (ISafeTensorsSource source = SafeTensorsCheckpoint.Open(file))
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (SafeTensorInfo info in source.Tensors)
            {
                if (DropRebuiltKeys(info.Name) is null) continue;
                seen.Add(info.Name);
                if (target.TryGetValue(info.Name, out torch.Tensor? destination))
                {
                    if (!destination.shape.SequenceEqual(info.Shape))
                        misshapen.Add($"{info.Name}: file [{string.Join(", ", info.Shape)}], model [{string.Join(", ", destination.shape)}]");
                }
                else if (TopLevel(info.Name) is { } branch && !branches.Contains(branch)) skippedBranches.Add(branch);
                else unexpected.Add(info.Name);
            }
            missing.AddRange(target.Keys.Where(key => DropRebuiltKeys(key) is not null && !seen.Contains(key)).Order(StringComparer.Ordinal));
        }
        if (missing.Count > 0 || unexpected.Count > 0 || misshapen.Count > 0)
        {
            int shown = StateDictMismatchException.MaxNamesInMessage;
            throw new CheckpointException(
                $"{file} does not fit the {role}: {missing.Count} missing tensor(s) [{string.Join(", ", missing.Take(shown))}], "
                + $"{unexpected.Count} unexpected tensor(s) [{string.Join(", ", unexpected.Take(shown))}], "
                + $"{misshapen.Count} misshapen tensor(s) [{string.Join("; ", misshapen.Take(shown))}]. "
                + "The reference would have loaded it non-strictly and trained from partly random weights; build the model from the "
                + "checkpoint's own configs (llm_config.json, vit_config.json, layer_module, max_latent_size, visual_gen, visual_und).");
        }
        if (skippedBranches.Count > 0 && _logger is not null) LogSkippedBranches(_logger, file, string.Join(", ", skippedBranches));
        var load = new StateDictLoadOptions { Strict = false, KeyMap = key => DropRebuiltKeys(key) is null || !target.ContainsKey(key) ? null : key, Logger = _logger };
        return StateDictLoader.Load(module, file, load, cancellationToken);
    }

    private static string? TopLevel(string key)
    {
        int dot = key.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 ? key[..dot] : null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{File}: skipped the tensors of branches this model does not have ({Branches}).")]
    private static partial void LogSkippedBranches(ILogger logger, string file, string branches);

    private static string? DropRebuiltKeys(string key) =>
        ResumePlan.DroppedWeightKeySuffixes.Any(suffix => key.EndsWith(suffix, StringComparison.Ordinal)) ? null : key;
}
