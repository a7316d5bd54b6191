using Bagel.Core.Distributed;
using Bagel.Training.Distributed;
using Bagel.Training.Logging;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Options;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Recipes;

/// <summary>
/// The train command line, callable in-process: the reference's flags (<see cref="ReferenceCommandLine"/>: snake_case,
/// kebab-case, unique prefixes), checked all at once, then <see cref="BagelRecipe"/> and a <see cref="Trainer"/> that logs
/// as the reference's rank 0 (records to stderr and <c>&lt;results_dir&gt;/log.txt</c>, bare step lines to stdout) with
/// JSONL (<c>metrics.jsonl</c>) and TensorBoard (<c>tensorboard/</c>) metrics under <c>results_dir</c>. Cancelling the
/// token stops after the current step with a final checkpoint and returns <see cref="ExitInterrupted"/>.
/// </summary>
public static partial class TrainCommand
{
    /// <summary>Exit code of a finished run.</summary>
    public const int ExitSuccess = 0;

    /// <summary>Exit code when the run failed after starting (a load, the data, a non-finite loss).</summary>
    public const int ExitFailure = 1;

    /// <summary>Exit code for bad flags or files named by the flags (every problem listed on stderr).</summary>
    public const int ExitUsage = 2;

    /// <summary>
    /// Exit code of a run stopped by its cancellation token (Ctrl+C): 130, the shell's code for SIGINT. The run wrote a
    /// final checkpoint when it had started training; the same command resumes it when <c>auto_resume</c> is on. The
    /// console app returns <see cref="ExitTerminated"/> instead when SIGTERM stopped it.
    /// </summary>
    public const int ExitInterrupted = 130;

    /// <summary>Exit code of a run stopped by SIGTERM (143, the shell's code for it); otherwise as <see cref="ExitInterrupted"/>.</summary>
    public const int ExitTerminated = 143;

    /// <summary>
    /// Launcher settings of <c>torchrun</c> (training.md 5.8). The Bagel.Train app handles them (its one-machine launcher,
    /// <see cref="LocalLauncher"/>); this in-process command runs one rank and refuses them.
    /// </summary>
    public static IReadOnlyList<string> LauncherFlags { get; } =
        ["nnodes", "node_rank", "nproc_per_node", "master_addr", "master_port", "rdzv_backend", "rdzv_endpoint", "rdzv_id", "standalone"];

    /// <summary>Runs the command.</summary>
    /// <param name="args">The reference's flags.</param>
    /// <param name="stdout">Receives the bare step lines (and <c>--help</c>).</param>
    /// <param name="stderr">Receives the log records, problems and the progress bar.</param>
    /// <param name="options">Presentation (default: no progress bar).</param>
    /// <param name="cancellationToken">Stops the run after the current step, with a final checkpoint.</param>
    /// <returns><see cref="ExitSuccess"/>, <see cref="ExitFailure"/>, <see cref="ExitUsage"/> or <see cref="ExitInterrupted"/>.</returns>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, TrainCommandOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        options ??= new TrainCommandOptions();
        if (args.Any(a => a is "--help" or "-h"))
        {
            await stdout.WriteLineAsync(Usage()).ConfigureAwait(false);
            return ExitSuccess;
        }
        if (LauncherFlagsIn(args) is { Count: > 0 } launcher)
        {
            await stderr.WriteLineAsync(
                $"Bagel.Train: {string.Join(", ", launcher.Select(f => "--" + f))} {(launcher.Count == 1 ? "is a launcher setting" : "are launcher settings")} (torchrun's node count, rank and rendezvous); "
                + $"TrainCommand runs one rank: start the ranks with the Bagel.Train app (Bagel.Train --nproc_per_node N ...), torchrun, srun or mpirun (docs/distributed.md).").ConfigureAwait(false);
            return ExitUsage;
        }

        IProcessGroup group;
        bool ownsGroup = false;
        if (options.WorldSize > 1 || options.ProcessGroup is not null)
        {
            try
            {
                group = DistributedStartup.Join(options.ProcessGroup, cuda: false, out ownsGroup);
            }
            catch (DistributedException e)
            {
                await stderr.WriteLineAsync($"Bagel.Train: WORLD_SIZE is {options.WorldSize}, but this rank cannot join the job: {e.Message}").ConfigureAwait(false);
                return ExitUsage;
            }
            if (group.WorldSize != options.WorldSize && options.ProcessGroup is null)
            {
                await stderr.WriteLineAsync($"Bagel.Train: WORLD_SIZE is {options.WorldSize}, but the process group has {group.WorldSize} rank(s); start every rank with the same launcher.").ConfigureAwait(false);
                if (ownsGroup) group.Dispose();
                return ExitUsage;
            }
        }
        else
        {
            group = DistributedRun.Current;
        }
        try
        {
            using IDisposable current = DistributedRun.Use(group);
            return await RunRankAsync(args, stdout, stderr, options, group.Rank, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (ownsGroup) group.Dispose();
        }
    }

    private static async Task<int> RunRankAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, TrainCommandOptions options, int rank, CancellationToken cancellationToken)
    {
        bool main = rank == 0;

        TrainingConfiguration configuration;
        try
        {
            configuration = ReferenceCommandLine.Bind(args);
            BagelRecipe.Validate(configuration);
        }
        catch (InvalidTrainingOptionsException e)
        {
            await stderr.WriteLineAsync($"Bagel.Train: {e.Message}").ConfigureAwait(false);
            return ExitUsage;
        }

        string results = Path.GetFullPath(configuration.Training.ResultsDir);
        Directory.CreateDirectory(results);
        Directory.CreateDirectory(Path.GetFullPath(configuration.Training.CheckpointDir));
        using var progressWriter = options.ShowProgress && main ? new ProgressLineWriter(stderr) : null;
        TextWriter logWriter = progressWriter ?? stderr;
        using TextWriter? stepWriter = progressWriter?.Beside(stdout); // keeps the bare lines off the progress line of a shared terminal
        // Rank 0 logs as the reference's rank 0; the other ranks report only warnings and errors, on stderr.
        using ILoggerFactory loggers = main
            ? LoggerFactory.Create(b => b
                .AddProvider(new ReferenceFormatLoggerProvider(logWriter, color: options.ColorLogs))
                .AddProvider(ReferenceFormatLoggerProvider.ForResultsDir(results))
                .AddBareStepLines(options.BareStepLines ? stepWriter ?? stdout : null))
            : LoggerFactory.Create(b => b.SetMinimumLevel(DistributedStartup.MinimumLogLevel(rank)).AddProvider(new ReferenceFormatLoggerProvider(logWriter, color: options.ColorLogs)));
        ILogger log = loggers.CreateLogger("Bagel.Train");
        try
        {
            LogTrackers(log, Path.Combine(results, JsonlMetricSink.DefaultFileName), Path.Combine(results, "tensorboard"));
            using BagelRun run = await BagelRecipe.BuildAsync(configuration, loggers, cancellationToken).ConfigureAwait(false);
            TrainerBuilder builder = new TrainerBuilder().UseRecipe(run).UseLogger(loggers).UseProcessGroup(DistributedRun.Current);
            await using var jsonl = main ? new JsonlMetricSink(Path.Combine(results, JsonlMetricSink.DefaultFileName)) : null;
            await using var tensorBoard = main ? new TensorBoardMetricSink(Path.Combine(results, "tensorboard")) : null;
            if (jsonl is not null && tensorBoard is not null) builder.AddMetricSink(jsonl).AddMetricSink(tensorBoard);
            else builder.UseDefaultMetricSinks(false);
            if (progressWriter is not null) builder.OnStep(progressWriter.StepReporter(configuration.Training.TotalSteps, options.ProgressInterval));
            using Trainer trainer = builder.Build();
            TrainingRunResult result = await trainer.RunAsync(cancellationToken).ConfigureAwait(false);
            progressWriter?.ClearProgress();
            if (result.Cancelled)
            {
                LogInterrupted(log, result.CompletedSteps, configuration.Training.TotalSteps, result.LastCheckpoint, results);
                return ExitInterrupted;
            }
            LogDone(log, result.CompletedSteps, result.LastCheckpoint, results);
            return ExitSuccess;
        }
        catch (InvalidTrainingOptionsException e)
        {
            progressWriter?.ClearProgress();
            LogFailed(log, e.Message);
            return ExitUsage;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped while loading, before the first step: there is nothing to checkpoint yet.
            progressWriter?.ClearProgress();
            LogStoppedBeforeTraining(log);
            return ExitInterrupted;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The CLI's last line of defence: every library error type names its file or key, so its message is the report.
            progressWriter?.ClearProgress();
            LogFailed(log, $"{e.GetType().Name}: {e.Message}");
            return ExitFailure;
        }
    }

    /// <summary>The launcher flags in <paramref name="args"/> (snake or kebab case, with or without <c>=value</c>).</summary>
    public static IReadOnlyList<string> LauncherFlagsIn(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return [.. args.Where(a => a.StartsWith("--", StringComparison.Ordinal))
            .Select(a => a[2..].Split('=', 2)[0].Replace('-', '_'))
            .Where(name => LauncherFlags.Contains(name, StringComparer.Ordinal))
            .Distinct(StringComparer.Ordinal)];
    }

    /// <summary>The <c>--help</c> text: how to run the tiny preset, then every flag with its meaning and default.</summary>
    public static string Usage() =>
        "Usage: Bagel.Train [--flag value ...]\n"
        + "       Bagel.Train            the tiny preset: example data + a tiny BAGEL trained on CPU under results/tiny-preset;\n"
        + "                              run again, it resumes from the latest checkpoint (or reports that the run is complete)\n"
        + "       Bagel.Train --fresh    the tiny preset after deleting results/tiny-preset (checkpoints, metrics, log, data, tokenizer)\n"
        + "       (BAGEL_TOKENIZER=<folder with the Qwen2.5 tokenizer files> makes the tiny preset use that tokenizer)\n\n"
        + "Flags (the reference's names; --a_b and --a-b both work, unique prefixes too; bool flags alone mean true,\n"
        + "--no_<flag> turns off one whose default is true):\n"
        + ReferenceFlagHelp.Format();

    [LoggerMessage(Level = LogLevel.Information, Message = "Done: {Steps} steps; last checkpoint {Checkpoint}; log and metrics in {Results}.")]
    private static partial void LogDone(ILogger logger, long steps, string checkpoint, string results);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Interrupted after {Steps} of {TotalSteps} steps; checkpoint {Checkpoint}; log and metrics in {Results}. With --auto_resume the same command continues from it.")]
    private static partial void LogInterrupted(ILogger logger, long steps, long totalSteps, string checkpoint, string results);

    [LoggerMessage(Level = LogLevel.Information, Message = "Metrics go to {Jsonl} and {TensorBoard} under the reference's W&B names (the wandb_* flags are accepted but W&B is not called; `wandb sync --sync-tensorboard` uploads the TensorBoard files).")]
    private static partial void LogTrackers(ILogger logger, string jsonl, string tensorBoard);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopped while loading, before the first step; no checkpoint was written.")]
    private static partial void LogStoppedBeforeTraining(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Training failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
