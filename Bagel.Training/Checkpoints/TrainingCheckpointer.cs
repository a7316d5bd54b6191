using Bagel.Core.DataStatus;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
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
/// misshapen tensors before anything is loaded. The fixed sin-cos position tables (<c>*_pos_embed.pos_embed</c>) are
/// written with the weights but not read back: the model rebuilds them from its configuration (as the reference drops
/// them), so they are neither loaded nor missing. File tensors of a whole branch the model does not have (a top-level module such as
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
        var parts = new List<CheckpointPart>();
        if (_components.Sharded is { } sharded) parts.AddRange(sharded.WeightParts(progress.CompletedSteps)); // model, EMA, optimizer shards
        else parts.AddRange([CheckpointPart.Model(_components.Model), CheckpointPart.Optimizer(_components.Optimizer)]);
        parts.AddRange([CheckpointPart.Scheduler(_components.Scheduler), CheckpointPart.Rng(_components.Streams)]);
        if (_components.Ema is { } ema && _components.Sharded is null) parts.Add(CheckpointPart.Ema(ema));
        if (dataStatus is not null) parts.Add(CheckpointPart.DataStatus(dataStatus with { Step = progress.CompletedSteps }));
        if (_components.RunInfo is { } info) parts.Add(CheckpointPart.RunInfo(info));
        var state = new TrainState(TrainState.CurrentFormatVersion, progress.CompletedSteps, _components.Guard?.TotalSkipped ?? 0,
            _components.Guard?.ConsecutiveSkipped ?? 0, progress.TokensSeen, progress.SamplesSeen, _time.GetUtcNow());
        return _writer.Save(state, parts, cancellationToken);
    }

    /// <summary>
    /// Plans the resume for <paramref name="options"/> (<see cref="ResumePlanner"/>) and restores it. Under
    /// <c>auto_resume</c> a checkpoint that cannot be restored (a truncated or unreadable file, a missing file or
    /// tensor) is skipped with a warning that names it and why, and the next older one is tried, so a run killed while
    /// its disk filled up resumes from its newest intact checkpoint.
    /// </summary>
    /// <exception cref="CheckpointException">No checkpoint could be restored (each one's reason is listed), or the
    /// <c>resume_from</c> checkpoint cannot be.</exception>
    public RestoreResult RestoreFromOptions(TrainingOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var skipped = new HashSet<string>(StringComparer.Ordinal);
        var reasons = new List<string>();
        while (true)
        {
            CheckpointInfo? candidate = options.AutoResume ? ResumePlanner.LatestCandidate(options, skipped) : null;
            if (candidate is null && reasons.Count > 0)
                throw new CheckpointException(
                    $"auto_resume found no intact checkpoint in {Path.GetFullPath(options.CheckpointDir)}: {string.Join("; ", reasons)}. " +
                    "Move the damaged folders away to start from resume_from or from scratch.");
            try
            {
                return Restore(ResumePlanner.Plan(options, _logger, skipped), cancellationToken);
            }
            catch (Exception e) when (candidate is not null && IsDamage(e))
            {
                skipped.Add(candidate.Folder);
                reasons.Add($"{candidate.Folder} ({e.Message})");
                if (_logger is not null) LogSkippedDamaged(_logger, candidate.Folder, e.Message);
            }
        }
    }

    /// <summary>Errors that say a checkpoint's files are damaged or incomplete (not a cancellation or a bug).</summary>
    private static bool IsDamage(Exception e) =>
        e is CheckpointException or IOException or InvalidDataException or FormatException or System.Text.Json.JsonException
            or SafeTensorsFormatException or SafeTensorNotFoundException or StateDictMismatchException;

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
        if (_components.Sharded is { } sharded) sharded.LoadOptimizerState(plan.Folder!);
        else if (!File.Exists(plan.TrainStateFile(CheckpointLayout.OptimizerFileName)) && Sharding.ShardedStateFiles.OptimizerFiles(plan.Folder!).Length > 0)
            throw new CheckpointException($"{plan.Folder} holds sharded optimizer state (optimizer-shard-*.safetensors); resume it with the sharding_strategy it was saved with (any world size), or use resume_model_only.");
        else AdamWStateFile.Load(_components.Optimizer, plan.TrainStateFile(CheckpointLayout.OptimizerFileName));
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
                + "The reference would have loaded it non-strictly and trained from partly random weights. " + FitAdvice(file));
        }
        if (skippedBranches.Count > 0 && _logger is not null) LogSkippedBranches(_logger, file, string.Join(", ", skippedBranches));
        List<string> rebuilt = [.. target.Keys.Where(key => DropRebuiltKeys(key) is null).Order(StringComparer.Ordinal)];
        if (rebuilt.Count > 0 && _logger is not null) LogRebuiltTables(_logger, file, string.Join(", ", rebuilt));
        // Strict now: every module tensor but the rebuilt tables comes from the file (checked above, from the header).
        var load = new StateDictLoadOptions
        {
            Strict = true, KeyMap = key => DropRebuiltKeys(key) is null || !target.ContainsKey(key) ? null : key,
            KeepModuleKey = key => DropRebuiltKeys(key) is null, Logger = _logger,
        };
        return StateDictLoader.Load(module, file, load, cancellationToken);
    }

    /// <summary>What to build the model from so that <paramref name="file"/> fits: the files its folder actually holds.</summary>
    private static string FitAdvice(string file)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".";
        const string Flags = "layer_module, max_latent_size, latent_patch_size, vit_max_num_patch_per_side, visual_gen and visual_und";
        if (File.Exists(Path.Combine(folder, CheckpointLayout.RunInfoFileName)))
            return $"Build the model with the configuration that wrote it: {Path.Combine(folder, CheckpointLayout.RunInfoFileName)} holds the run's flags " +
                   $"(llm_path and vit_path name the configs the model was built from; {Flags}).";
        string[] configs = [.. new[] { "llm_config.json", "vit_config.json", "config.json" }.Where(name => File.Exists(Path.Combine(folder, name)))];
        if (configs.Length > 0)
            return $"Build the model from the configs beside it ({string.Join(", ", configs)}) with the same {Flags}.";
        return $"Build the model with the llm_path, vit_path and {Flags} of the run that wrote it.";
    }

    private static string? TopLevel(string key)
    {
        int dot = key.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 ? key[..dot] : null;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{File}: kept the model's own sin-cos position tables ({Keys}); they are rebuilt from the configuration, not loaded.")]
    private static partial void LogRebuiltTables(ILogger logger, string file, string keys);

    [LoggerMessage(Level = LogLevel.Warning, Message = "auto_resume: skipping checkpoint {Folder}, which cannot be restored: {Reason} Trying the next older one.")]
    private static partial void LogSkippedDamaged(ILogger logger, string folder, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{File}: skipped the tensors of branches this model does not have ({Branches}).")]
    private static partial void LogSkippedBranches(ILogger logger, string file, string branches);

    private static string? DropRebuiltKeys(string key) =>
        ResumePlan.DroppedWeightKeySuffixes.Any(suffix => key.EndsWith(suffix, StringComparison.Ordinal)) ? null : key;
}
