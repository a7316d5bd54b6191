using Bagel.Core.Native;
using Bagel.Train;

// Bagel.Train: with no arguments, the tiny preset (example data + a tiny BAGEL trained on CPU end to end).
// Unfinished: the reference's recipes from its flags (pre-training from parts, fine-tuning from a BAGEL checkpoint,
// T2I-only, VLM-only) arrive with the training issue; the flags themselves already parse (Bagel.Training.Options.ReferenceCommandLine).
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
if (args.Length > 0)
{
    Console.Error.WriteLine("Bagel.Train: training from the reference's flags is not wired yet (unfinished, see the training issue). " +
                            "Run without arguments for the tiny preset; set BAGEL_TOKENIZER to a Qwen2 tokenizer folder if ../shared/data is absent.");
    return 2;
}
string? tokenizer = Environment.GetEnvironmentVariable("BAGEL_TOKENIZER") ?? FindSharedTokenizer();
if (tokenizer is null)
{
    Console.Error.WriteLine("Bagel.Train: no Qwen2 tokenizer found. Set BAGEL_TOKENIZER to a folder with tokenizer.json or vocab.json + merges.txt " +
                            "(the Qwen2.5 files), or place the test data at ../shared/data beside the repository.");
    return 2;
}
return await TinyPreset.RunAsync(tokenizer, stop.Token);

static string? FindSharedTokenizer()
{
    for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, "..", "shared", "data", "tokenizer", "qwen2.5");
        if (File.Exists(Path.Combine(candidate, "vocab.json"))) return Path.GetFullPath(candidate);
    }
    return null;
}
