using System.Globalization;

namespace Bagel.Benchmarks;

/// <summary>Command-line options of the 'data' benchmark.</summary>
internal sealed record DataBenchmarkOptions
{
    /// <summary>Samples read per (source kind, worker count) on the small example data.</summary>
    public int Samples { get; init; } = 400;

    /// <summary>Samples read per (source kind, worker count) on the 1024x1024 JPEG data.</summary>
    public int LargeSamples { get; init; } = 48;

    /// <summary>Rows / lines per kind of the generated 1024x1024 JPEG dataset.</summary>
    public int LargeCount { get; init; } = 100;

    /// <summary>Samples read by the memory run (RSS is reported after 1,000 and after this many).</summary>
    public int RssSamples { get; init; } = 10_000;

    /// <summary>The Qwen2 tokenizer folder (vocab.json + merges.txt or tokenizer.json); default: ../shared/data/tokenizer/qwen2.5.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Where the datasets are written (default: a new folder under /tmp, deleted afterwards).</summary>
    public string? Folder { get; init; }

    /// <summary>Keep the generated datasets.</summary>
    public bool Keep { get; init; }

    /// <summary>Skip the Python PIL comparison.</summary>
    public bool NoPython { get; init; }

    /// <summary>Parses the arguments, or returns null after printing the problem.</summary>
    public static DataBenchmarkOptions? Parse(string[] args)
    {
        var options = new DataBenchmarkOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Count() => int.Parse(Value(), CultureInfo.InvariantCulture) is var n and > 0 ? n : throw new ArgumentException($"{args[i - 1]} must be positive.");
            try
            {
                options = args[i] switch
                {
                    "--samples" => options with { Samples = Count() },
                    "--large-samples" => options with { LargeSamples = Count() },
                    "--large-count" => options with { LargeCount = Count() },
                    "--rss-samples" => options with { RssSamples = Count() },
                    "--tokenizer" => options with { Tokenizer = Value() },
                    "--folder" => options with { Folder = Value() },
                    "--keep" => options with { Keep = true },
                    "--no-python" => options with { NoPython = true },
                    _ => throw new ArgumentException($"unknown option '{args[i]}'."),
                };
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
            {
                Console.Error.WriteLine($"data: {ex.Message}");
                return null;
            }
        }
        return options;
    }

    /// <summary>The tokenizer folder: the option, $BAGEL_SHARED_DATA/tokenizer/qwen2.5, or ../shared/data beside the repository.</summary>
    public string? FindTokenizer()
    {
        if (Tokenizer is not null) return Tokenizer;
        if (Environment.GetEnvironmentVariable("BAGEL_SHARED_DATA") is { Length: > 0 } shared) return Path.Combine(shared, "tokenizer", "qwen2.5");
        foreach (string start in (string[])[Environment.CurrentDirectory, AppContext.BaseDirectory])
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (!File.Exists(Path.Combine(dir.FullName, "Bagel.sln"))) continue;
                string candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "tokenizer", "qwen2.5"));
                if (Directory.Exists(candidate)) return candidate;
            }
        }
        return null;
    }
}
