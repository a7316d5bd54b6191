using Bagel.BuilderSamples;
using Bagel.Core.Native;
using Bagel.Data.Tokenization;

// dotnet run --project Bagel.Samples/Bagel.BuilderSamples -- t2i|edit|vlm   (needs BAGEL_TOKENIZER or ../shared/data)
TorchRuntime.EnsureLoaded();
string? folder = Environment.GetEnvironmentVariable("BAGEL_TOKENIZER")
    ?? Path.GetFullPath(Path.Combine("..", "shared", "data", "tokenizer", "qwen2.5"));
if (!Directory.Exists(folder) || args.Length != 1 || args[0] is not ("t2i" or "edit" or "vlm"))
{
    Console.Error.WriteLine("usage: Bagel.BuilderSamples t2i|edit|vlm (set BAGEL_TOKENIZER to a Qwen2 tokenizer folder if ../shared/data is absent)");
    return 2;
}
BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(folder));
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
await (args[0] switch
{
    "t2i" => T2IOnly.RunAsync(tokenizer, stop.Token),
    "edit" => EditOnly.RunAsync(tokenizer, stop.Token),
    _ => VlmOnly.RunAsync(tokenizer, stop.Token),
});
return 0;
