using System.Runtime.InteropServices;
using Bagel.Core.Native;
using Bagel.Training.Distributed;
using Bagel.Training.Recipes;

// Bagel.Train: with the reference's flags, its recipes (pre-training from parts, fine-tuning a BAGEL release, T2I-only,
// VLM-only) through Bagel.Training.Recipes.TrainCommand; with no arguments (or only --fresh), the tiny preset (example
// data + a tiny BAGEL trained on CPU end to end), which resumes when run again.
TorchRuntime.EnsureLoaded();
using var stop = new CancellationTokenSource();
int signalExit = 0;
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // stop cleanly after the current step, with a final checkpoint
    Interlocked.CompareExchange(ref signalExit, TrainCommand.ExitInterrupted, 0);
    stop.Cancel();
};
// SIGTERM (a scheduler or `kill`) stops the same way instead of killing the process mid-step.
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    Interlocked.CompareExchange(ref signalExit, TrainCommand.ExitTerminated, 0);
    stop.Cancel();
});
// torchrun's launcher flags (--nproc_per_node N, ...): start N ranks of this app with the other flags (docs/distributed.md).
if (LocalLauncher.Parse(args, out LauncherRequest? launch, out IReadOnlyList<string> rankArgs) is { } launchError)
{
    Console.Error.WriteLine($"Bagel.Train: {launchError}");
    return TrainCommand.ExitUsage;
}
if (launch is not null)
{
    (string app, IReadOnlyList<string> appArgs) = LocalLauncher.CurrentApp();
    // CPU training uses the MPI backend, whose ranks mpirun starts; BAGEL_LAUNCHER=env starts them with torchrun's variables (CUDA, NCCL).
    LauncherMode mode = Environment.GetEnvironmentVariable("BAGEL_LAUNCHER") == "env" ? LauncherMode.TorchrunVariables : LauncherMode.Mpirun;
    return await LocalLauncher.RunAsync(launch, mode, app, [.. appArgs, .. rankArgs], Console.Error, cancellationToken: stop.Token);
}
TrainCommandOptions console = TrainCommandOptions.ForConsole();
int exit;
// The tiny preset takes --fresh and --precision bf16|fp32|auto; any other flag means the reference's command line.
bool fresh = args.Contains("--fresh");
int precisionAt = Array.IndexOf(args, "--precision");
bool tinyPreset = args.Length == (fresh ? 1 : 0) + (precisionAt >= 0 && precisionAt + 1 < args.Length ? 2 : 0);
if (!tinyPreset)
{
    exit = await TrainCommand.RunAsync(args, Console.Out, Console.Error, console, stop.Token);
}
else
{
    // The tiny preset trains its own byte-level BPE tokenizer on the example texts; BAGEL_TOKENIZER picks a Qwen2.5 folder instead.
    string? tokenizer = Environment.GetEnvironmentVariable("BAGEL_TOKENIZER");
    exit = await TinyPreset.RunAsync(new TinyPresetOptions
    {
        Fresh = fresh,
        Precision = precisionAt >= 0 ? args[precisionAt + 1] : "auto",
        TokenizerFolder = string.IsNullOrEmpty(tokenizer) ? null : tokenizer,
        Presentation = console,
    }, Console.Out, Console.Error, stop.Token);
}
// A stop by signal exits with the shell's code for that signal (130 SIGINT, 143 SIGTERM).
return exit == TrainCommand.ExitInterrupted && signalExit != 0 ? signalExit : exit;
