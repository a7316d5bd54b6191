using Bagel.Training.Options;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Checkpoints;

/// <summary>
/// Works out the <see cref="ResumePlan"/> from the training flags, as the reference does (training.md 5.7):
/// <list type="bullet">
/// <item><c>auto_resume</c>: the complete checkpoint with the most steps in <c>checkpoint_dir</c> resumes fully
/// (<c>resume_model_only</c> and <c>finetune_from_ema</c> forced off); with none, fall back to <c>resume_from</c>.</item>
/// <item><c>resume_from</c> missing or absent on disk: from scratch.</item>
/// <item><c>resume_model_only</c>: weights only; with <c>finetune_from_ema</c> the live model loads <c>ema.safetensors</c>.</item>
/// <item>otherwise: full resume, which needs our <c>train_state.json</c> (the reference derived the step from the folder name).</item>
/// </list>
/// </summary>
public static partial class ResumePlanner
{
    /// <summary>The plan for <paramref name="options"/>.</summary>
    /// <exception cref="CheckpointException">A needed weights file or train state is missing; the message names it.</exception>
    public static ResumePlan Plan(TrainingOptions options, ILogger? logger = null) => Plan(options, logger, skipFolders: null);

    /// <summary>
    /// The plan for <paramref name="options"/>, with <c>auto_resume</c> passing over the checkpoint folders in
    /// <paramref name="skipFolders"/> (full paths of checkpoints found damaged).
    /// </summary>
    /// <exception cref="CheckpointException">A needed weights file or train state is missing; the message names it.</exception>
    public static ResumePlan Plan(TrainingOptions options, ILogger? logger, IReadOnlySet<string>? skipFolders)
    {
        ArgumentNullException.ThrowIfNull(options);
        ResumePlan plan = Choose(options, logger, skipFolders);
        if (logger is not null) LogPlan(logger, plan.Kind, plan.Folder ?? "-", plan.StartStep, plan.Reason);
        return plan;
    }

    /// <summary>The newest complete checkpoint of <c>checkpoint_dir</c> not in <paramref name="skipFolders"/>, or null.</summary>
    public static CheckpointInfo? LatestCandidate(TrainingOptions options, IReadOnlySet<string>? skipFolders, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return CheckpointCatalog.List(options.CheckpointDir, logger).LastOrDefault(c => skipFolders?.Contains(c.Folder) != true);
    }

    private static ResumePlan Choose(TrainingOptions options, ILogger? logger, IReadOnlySet<string>? skipFolders)
    {
        if (options.AutoResume && LatestCandidate(options, skipFolders, logger) is { } latest)
            return Full(latest.Folder, fromAutoResume: true,
                $"auto_resume found {latest.Folder}; resuming fully (resume_model_only and finetune_from_ema do not apply).");

        if (options.ResumeFrom is null)
            return Scratch("no resume_from: training from scratch.");
        if (!Directory.Exists(options.ResumeFrom))
        {
            if (logger is not null) LogMissing(logger, options.ResumeFrom);
            return Scratch($"resume_from {options.ResumeFrom} does not exist: training from scratch, as the reference.");
        }
        string folder = Path.GetFullPath(options.ResumeFrom);
        if (!options.ResumeModelOnly)
            return Full(folder, fromAutoResume: false, $"resume_from {folder}: resuming fully.");

        bool fromEma = options.FinetuneFromEma;
        string model = RequireFile(folder, fromEma ? CheckpointLayout.EmaFileName : CheckpointLayout.ModelFileName,
            fromEma ? "finetune_from_ema loads the EMA weights" : "resume_model_only loads the model weights; add finetune_from_ema for a released model, which ships only ema.safetensors");
        return new ResumePlan(ResumeKind.ModelOnly, folder, model, EmaOrModel(folder, model), 0, false,
            $"resume_model_only from {folder}: weights from {Path.GetFileName(model)}, optimizer, scheduler and data start fresh (warm-up restarts).");
    }

    private static ResumePlan Full(string folder, bool fromAutoResume, string reason)
    {
        string trainState = Path.Combine(folder, CheckpointLayout.TrainStateFileName);
        if (!File.Exists(trainState))
            throw new CheckpointException(
                $"{folder} has no {CheckpointLayout.TrainStateFileName}, so it is not a complete Bagel.NET checkpoint and cannot be resumed fully. " +
                "To load only its weights, set resume_model_only (and finetune_from_ema for a released model).");
        TrainState state = TrainState.Read(trainState);
        string model = RequireFile(folder, CheckpointLayout.ModelFileName, "a full resume loads the model weights");
        return new ResumePlan(ResumeKind.Full, folder, model, EmaOrModel(folder, model), state.NextStepIndex, fromAutoResume, reason);
    }

    private static ResumePlan Scratch(string reason) => new(ResumeKind.Scratch, null, null, null, 0, false, reason);

    private static string EmaOrModel(string folder, string modelFile)
    {
        string ema = Path.Combine(folder, CheckpointLayout.EmaFileName);
        return File.Exists(ema) ? ema : modelFile;
    }

    private static string RequireFile(string folder, string fileName, string why)
    {
        string path = Path.Combine(folder, fileName);
        return File.Exists(path) ? path : throw new CheckpointException($"{path} does not exist ({why}).");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Resume plan: {Kind} from {Folder}, first step {StartStep}. {Reason}")]
    private static partial void LogPlan(ILogger logger, ResumeKind kind, string folder, long startStep, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "resume_from {Path} does not exist; training from scratch.")]
    private static partial void LogMissing(ILogger logger, string path);
}
