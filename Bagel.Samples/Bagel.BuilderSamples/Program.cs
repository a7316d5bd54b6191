using Bagel.BuilderSamples;
using Bagel.Core.Native;
using Bagel.Data.Tokenization;

// dotnet run --project Bagel.Samples/Bagel.BuilderSamples -- t2i|edit|vlm | folder IMAGE_DIR
// BAGEL_TOKENIZER=<Qwen2 tokenizer folder> picks a real tokenizer; without it the samples use a byte-level one (no files).
TorchRuntime.EnsureLoaded();
string? folder = Environment.GetEnvironmentVariable("BAGEL_TOKENIZER");
bool imageFolder = args is ["folder", _] && Directory.Exists(args[1]);
if (folder is not null && !Directory.Exists(folder))
{
    Console.Error.WriteLine($"BAGEL_TOKENIZER names '{folder}', which is not a folder.");
    return 2;
}
if (!(imageFolder || args is ["t2i" or "edit" or "vlm"]))
{
    Console.Error.WriteLine("usage: Bagel.BuilderSamples t2i|edit|vlm, or: Bagel.BuilderSamples folder IMAGE_DIR (images with .txt captions beside them)");
    return 2;
}
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
if (imageFolder)
{
    await ImageFolderTraining.RunAsync(args[1], folder, SampleSetup.Results("image-folder"), steps: 20, SampleSetup.Loggers, stop.Token);
    return 0;
}
BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(folder is null ? ByteLevelBpeTrainer.BytesOnly() : Qwen2Tokenizer.FromFolder(folder));
await (args[0] switch
{
    "t2i" => T2IOnly.RunAsync(tokenizer, stop.Token),
    "edit" => EditOnly.RunAsync(tokenizer, stop.Token),
    _ => VlmOnly.RunAsync(tokenizer, stop.Token),
});
return 0;
