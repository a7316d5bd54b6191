using Bagel.Data.Example;
using Microsoft.Extensions.Logging;

namespace Bagel.DataTools;

/// <summary><c>example-data</c>: writes the example dataset with <see cref="ExampleDataWriter"/>.</summary>
internal static class ExampleDataCommand
{
    public const string Usage =
        "example-data --out DIR [--seed N] [--large] [--force]\n" +
        "      Writes a synthetic dataset in the reference's bagel_example layout (t2i/, editing/, vlm/, dataset_info.yaml,\n" +
        "      example.yaml). Default: tiny (3x8 T2I rows, 2x10 edit rows, 24 VLM lines, 32-96 px PNG/JPEG) for CPU runs.\n" +
        "      --seed N   content seed (default 42); the same seed gives byte-identical files\n" +
        "      --large    the reference's shape: 10x100 T2I rows, 10x100 edit rows, 1000 VLM lines, 1024x1024 JPEGs\n" +
        "      --force    replace DIR if it exists";

    public static async Task<int> RunAsync(IReadOnlyList<string> args, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var parsed = new CommandArguments(args, ["out", "seed"], ["large", "force"]);
        string output = parsed.Required("out");
        if ((Directory.Exists(output) || File.Exists(output)) && !parsed.Flag("force"))
            throw new UsageException($"'{Path.GetFullPath(output)}' already exists; pass --force to replace it, or choose another --out.");
        var options = (parsed.Flag("large") ? ExampleDataOptions.Large(output) : new ExampleDataOptions { OutputFolder = output }) with
        {
            Seed = parsed.Integer("seed", 42),
            Overwrite = parsed.Flag("force"),
        };
        var writer = new ExampleDataWriter(options, loggers.CreateLogger<ExampleDataWriter>());
        int lastDecile = 0;
        var progress = new ConsoleProgress(p =>
        {
            int decile = p.FilesWritten * 10 / p.TotalFiles;
            if (decile == lastDecile) return;
            lastDecile = decile;
            Console.WriteLine($"  {p.FilesWritten}/{p.TotalFiles} files ({p.LastFile})");
        });
        var summary = await writer.WriteAsync(progress, cancellationToken);
        Console.WriteLine($"wrote {summary.Folder}: {summary.T2IRows} T2I rows, {summary.EditRows} edit rows ({summary.EditImages} pictures), " +
                          $"{summary.VlmLines} VLM lines; {summary.Files} files, {summary.Bytes / 1024.0:F0} KiB");
        Console.WriteLine($"registry: {summary.DatasetInfoPath}");
        Console.WriteLine($"mix:      {summary.MixConfigPath}");
        return 0;
    }

    /// <summary>Reports synchronously on the writing thread (Progress&lt;T&gt; would post and reorder lines).</summary>
    private sealed class ConsoleProgress(Action<ExampleDataProgress> report) : IProgress<ExampleDataProgress>
    {
        public void Report(ExampleDataProgress value) => report(value);
    }
}
