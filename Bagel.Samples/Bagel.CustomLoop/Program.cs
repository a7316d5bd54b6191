using System.Runtime.InteropServices;
using Bagel.Core.Native;
using Bagel.CustomLoop;
using Bagel.Training.Logging;
using Microsoft.Extensions.Logging;

// Bagel.CustomLoop: the tiny BAGEL trained by a loop written by hand (CustomTrainingLoop.cs) instead of the Trainer. It stops
// half-way as if interrupted, then resumes from that checkpoint with a freshly built model, as a relaunch would.
//   --steps N (default 300)   --save-every N (default 100)   --out FOLDER (default results/custom-loop, emptied first)
//   --resume: keep FOLDER and continue from its last checkpoint (after Ctrl+C, say) instead of starting afresh
TorchRuntime.EnsureLoaded();
using var stop = new CancellationTokenSource();
// Ctrl+C finishes the current step and writes a checkpoint instead of killing the process.
using var ctrlC = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
{
    context.Cancel = true;
    stop.Cancel();
});
int steps = int.Parse(Argument("--steps") ?? "300", System.Globalization.CultureInfo.InvariantCulture);
int saveEvery = int.Parse(Argument("--save-every") ?? "100", System.Globalization.CultureInfo.InvariantCulture);
string results = Path.GetFullPath(Argument("--out") ?? Path.Combine("results", "custom-loop"));
bool resume = args.Contains("--resume");
if (!resume && Directory.Exists(results)) Directory.Delete(results, recursive: true);

using var loggers = LoggerFactory.Create(b => b.AddProvider(new ReferenceFormatLoggerProvider(Console.Error)));
ILogger log = loggers.CreateLogger("Bagel.CustomLoop");
string data = Path.Combine(results, "bagel_example"), checkpoints = Path.Combine(results, "checkpoints");

if (!resume)
{
    using TinyRun first = await TinyRun.CreateAsync(data, checkpoints, steps, saveEvery, log, stop.Token);
    var interrupted = await CustomTrainingLoop.TrainAsync(first, log, stopAfter: steps / 2, cancellationToken: stop.Token);
    log.LogInformation("Stopped after {Steps} steps as if interrupted: {Checkpoint}", interrupted.CompletedSteps, interrupted.Folder);
    if (stop.IsCancellationRequested) return 0; // Ctrl+C: rerun with --resume to continue
}
using TinyRun second = await TinyRun.CreateAsync(data, checkpoints, steps, saveEvery, log, stop.Token);
var last = await CustomTrainingLoop.TrainAsync(second, log, cancellationToken: stop.Token);
log.LogInformation("Done: {Steps} steps, last checkpoint {Checkpoint}", last.CompletedSteps, last.Folder);
return 0;

string? Argument(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
