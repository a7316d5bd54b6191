using Bagel.Core.Native;
using Bagel.Train;
using Bagel.Training.Recipes;

// Bagel.Train: with the reference's flags, its recipes (pre-training from parts, fine-tuning a BAGEL release, T2I-only,
// VLM-only) through Bagel.Training.Recipes.TrainCommand; with no arguments, the tiny preset (example data + a tiny BAGEL
// trained on CPU end to end).
TorchRuntime.EnsureLoaded();
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // stop cleanly after the current step, with a final checkpoint
    stop.Cancel();
};
// SIGTERM (a scheduler or `kill`) stops the same way instead of killing the process mid-step.
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});
// The progress bar goes to stderr only on a terminal, or when asked with BAGEL_PROGRESS=1 (0 turns it off).
string? progress = Environment.GetEnvironmentVariable("BAGEL_PROGRESS");
bool showProgress = progress is null ? !Console.IsErrorRedirected : progress is "1" or "true";
if (args.Length > 0)
{
    return await TrainCommand.RunAsync(args, Console.Out, Console.Error, new TrainCommandOptions { ShowProgress = showProgress }, stop.Token);
}
string? tokenizer = Environment.GetEnvironmentVariable("BAGEL_TOKENIZER") ?? FindSharedTokenizer();
if (tokenizer is null)
{
    Console.Error.WriteLine("Bagel.Train: no Qwen2 tokenizer found. Set BAGEL_TOKENIZER to a folder with tokenizer.json or vocab.json + merges.txt " +
                            "(the Qwen2.5 files), or place the test data at ../shared/data beside the repository.");
    return 2;
}
return await TinyPreset.RunAsync(tokenizer, showProgress, stop.Token);

static string? FindSharedTokenizer()
{
    for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, "..", "shared", "data", "tokenizer", "qwen2.5");
        if (File.Exists(Path.Combine(candidate, "vocab.json"))) return Path.GetFullPath(candidate);
    }
    return null;
}
