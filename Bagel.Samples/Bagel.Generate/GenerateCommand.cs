using System.Globalization;
using Bagel.Data.Images;
using Bagel.Models.Generation;
using Bagel.Training.Inference;

namespace Bagel.Generate;

/// <summary>
/// The <c>Bagel.Generate</c> commands, callable in-process:
/// <c>generate --checkpoint DIR --prompt "…" --out a.png</c>,
/// <c>edit --checkpoint DIR --image in.png --instruction "…" --out b.png</c>,
/// <c>ask --checkpoint DIR --image in.jpg --question "…"</c>.
/// Common flags: <c>--seed</c>, <c>--ema</c> (default) / <c>--model</c>, <c>--think</c>. Images: <c>--steps</c> (Euler
/// steps; <c>--num_timesteps</c> = steps + 1), <c>--size</c> (N or HxW, generate only), and the reference's
/// <c>--cfg_text_scale</c>, <c>--cfg_img_scale</c>, <c>--cfg_interval LO,HI</c>, <c>--cfg_renorm_min</c>,
/// <c>--cfg_renorm_type global|channel|text_channel</c>, <c>--timestep_shift</c>, <c>--num_timesteps</c>. Text:
/// <c>--max_length</c>, <c>--do_sample</c>, <c>--temperature</c>. Bad input (a flag, a missing or incompatible
/// checkpoint, an unreadable image, a size the model cannot make) prints one line naming it and exits with 2.
/// </summary>
public static class GenerateCommand
{
    /// <summary>Success.</summary>
    public const int ExitSuccess = 0;

    /// <summary>An unexpected failure.</summary>
    public const int ExitFailure = 1;

    /// <summary>Bad input: a flag, the checkpoint, an image or a size.</summary>
    public const int ExitBadInput = 2;

    /// <summary>Stopped by the token.</summary>
    public const int ExitInterrupted = 130;

    private static readonly HashSet<string> Switches = ["--ema", "--model", "--think", "--do_sample", "--help"];

    /// <summary>Runs a command.</summary>
    /// <param name="args">The command name and its flags.</param>
    /// <param name="stdout">Receives the answer (ask) or the written path (generate, edit).</param>
    /// <param name="stderr">Receives errors and progress lines.</param>
    /// <param name="cancellationToken">Stops between steps.</param>
    /// <returns>The exit code.</returns>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            stdout.WriteLine(Usage);
            return args.Length == 0 ? ExitBadInput : ExitSuccess;
        }
        try
        {
            string command = args[0];
            Dictionary<string, string?> flags = Parse(args.AsSpan(1));
            if (flags.ContainsKey("--help"))
            {
                stdout.WriteLine(Usage);
                return ExitSuccess;
            }
            return command switch
            {
                "generate" => Generate(flags, stdout, stderr, cancellationToken),
                "edit" => Edit(flags, stdout, stderr, cancellationToken),
                "ask" => Ask(flags, stdout, stderr, cancellationToken),
                _ => throw new UsageException($"Unknown command '{command}'; use generate, edit or ask."),
            };
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            stderr.WriteLine("Bagel.Generate: stopped.");
            return ExitInterrupted;
        }
        catch (Exception e) when (e is UsageException or GenerationLoadException or ImageDecodeException or ArgumentException or FileNotFoundException
                                      or DirectoryNotFoundException or UnauthorizedAccessException or InvalidOperationException)
        {
            stderr.WriteLine($"Bagel.Generate: {OneLine(e.Message)}");
            return ExitBadInput;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            stderr.WriteLine($"Bagel.Generate: failed: {e.GetType().Name}: {OneLine(e.Message)}");
            return ExitFailure;
        }
    }

    /// <summary>The help text.</summary>
    public const string Usage = """
        Bagel.Generate generate --checkpoint DIR --prompt "..." --out a.png [--size N|HxW]
        Bagel.Generate edit     --checkpoint DIR --image in.png --instruction "..." --out b.png
        Bagel.Generate ask      --checkpoint DIR --image in.jpg --question "..."
          DIR: a checkpoint step folder, a run's checkpoints/ or results folder (latest checkpoint), or a released BAGEL folder
          --ema (default) | --model     weights to use
          --seed N (0)  --think
          images: --steps N (num_timesteps - 1) --num_timesteps N (50) --timestep_shift X (3.0)
                  --cfg_text_scale X (3.0) --cfg_img_scale X (1.5) --cfg_interval LO,HI (0.4,1.0)
                  --cfg_renorm_min X (0.0) --cfg_renorm_type global|channel|text_channel (global)
          text:   --max_length N (1000) --do_sample --temperature X (0.3)
        """;

    private static int Generate(Dictionary<string, string?> flags, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        Allow(flags, "generate", ImageFlags.Concat(["--prompt", "--out", "--size"]));
        string prompt = Required(flags, "--prompt");
        string output = Required(flags, "--out");
        using BagelPipeline pipeline = Load(flags, stderr, cancellationToken);
        int side = Math.Min(1024, pipeline.MaxImageSide);
        (int height, int width) = flags.TryGetValue("--size", out string? size) ? ParseSize(size!) : (side, side);
        pipeline.CheckSize(height, width);
        ImageGenerationOptions options = ImageOptions(flags) with { Height = height, Width = width };
        PipelineImage image = pipeline.TextToImage(prompt, options, Seed(flags), flags.ContainsKey("--think"), TextOptions(flags), cancellationToken);
        return Write(image, output, stdout);
    }

    private static int Edit(Dictionary<string, string?> flags, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        Allow(flags, "edit", ImageFlags.Concat(["--image", "--instruction", "--out"]));
        string instruction = Required(flags, "--instruction");
        string output = Required(flags, "--out");
        RgbImage input = ReadImage(Required(flags, "--image"));
        using BagelPipeline pipeline = Load(flags, stderr, cancellationToken);
        PipelineImage image = pipeline.Edit(input, instruction, ImageOptions(flags), Seed(flags), flags.ContainsKey("--think"), TextOptions(flags), cancellationToken);
        return Write(image, output, stdout);
    }

    private static int Ask(Dictionary<string, string?> flags, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        Allow(flags, "ask", CommonFlags.Concat(TextFlags).Concat(["--image", "--question"]));
        string question = Required(flags, "--question");
        RgbImage input = ReadImage(Required(flags, "--image"));
        using BagelPipeline pipeline = Load(flags, stderr, cancellationToken);
        string answer = pipeline.Ask([input], question, TextOptions(flags), Seed(flags), flags.ContainsKey("--think"), cancellationToken);
        stdout.WriteLine(answer);
        return ExitSuccess;
    }

    private static readonly string[] CommonFlags = ["--checkpoint", "--seed", "--ema", "--model", "--think"];
    private static readonly string[] TextFlags = ["--max_length", "--do_sample", "--temperature"];
    private static readonly string[] ImageFlags = [.. CommonFlags, .. TextFlags, "--steps", "--num_timesteps", "--timestep_shift", "--cfg_text_scale",
        "--cfg_img_scale", "--cfg_interval", "--cfg_renorm_min", "--cfg_renorm_type"];

    private static BagelPipeline Load(Dictionary<string, string?> flags, TextWriter stderr, CancellationToken cancellationToken)
    {
        string folder = Required(flags, "--checkpoint");
        if (flags.ContainsKey("--ema") && flags.ContainsKey("--model")) throw new UsageException("Pass --ema or --model, not both.");
        var weights = flags.ContainsKey("--model") ? CheckpointWeights.Model : CheckpointWeights.Ema;
        BagelPipeline pipeline = BagelPipeline.Load(folder, new BagelPipelineOptions { Weights = weights }, cancellationToken);
        stderr.WriteLine($"Bagel.Generate: loaded the {pipeline.Description}.");
        return pipeline;
    }

    private static int Write(PipelineImage image, string output, TextWriter stdout)
    {
        if (image.Thinking is { } thinking) stdout.WriteLine(thinking);
        BagelPipeline.SavePng(image.Image, output);
        stdout.WriteLine($"{Path.GetFullPath(output)} ({image.Image.Width}x{image.Image.Height})");
        return ExitSuccess;
    }

    private static RgbImage ReadImage(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"--image {Path.GetFullPath(path)} does not exist.");
        return new ImageDecoder().DecodeFile(path);
    }

    private static ImageGenerationOptions ImageOptions(Dictionary<string, string?> flags)
    {
        var defaults = new ImageGenerationOptions();
        int timesteps = Int(flags, "--num_timesteps", defaults.NumTimesteps);
        if (flags.ContainsKey("--steps"))
        {
            int steps = Int(flags, "--steps", 0);
            if (steps < 1) throw new UsageException($"--steps {steps} must be at least 1.");
            if (flags.ContainsKey("--num_timesteps") && timesteps != steps + 1)
                throw new UsageException($"--steps {steps} means --num_timesteps {steps + 1}, but --num_timesteps {timesteps} was given.");
            timesteps = steps + 1;
        }
        (double lo, double hi) interval = defaults.CfgInterval;
        if (flags.TryGetValue("--cfg_interval", out string? text))
        {
            string[] parts = (text ?? "").Trim('[', ']', '(', ')').Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !double.TryParse(parts[0], CultureInfo.InvariantCulture, out double lo)
                || !double.TryParse(parts[1], CultureInfo.InvariantCulture, out double hi))
                throw new UsageException($"--cfg_interval '{text}' must be two numbers LO,HI (e.g. 0.4,1.0).");
            interval = (lo, hi);
        }
        var options = new ImageGenerationOptions
        {
            NumTimesteps = timesteps,
            TimestepShift = Double(flags, "--timestep_shift", defaults.TimestepShift),
            CfgTextScale = Double(flags, "--cfg_text_scale", defaults.CfgTextScale),
            CfgImgScale = Double(flags, "--cfg_img_scale", defaults.CfgImgScale),
            CfgInterval = interval,
            CfgRenormMin = Double(flags, "--cfg_renorm_min", defaults.CfgRenormMin),
            CfgRenormType = flags.TryGetValue("--cfg_renorm_type", out string? type) ? type switch
            {
                "global" => CfgRenormType.Global,
                "channel" => CfgRenormType.Channel,
                "text_channel" => CfgRenormType.TextChannel,
                _ => throw new UsageException($"--cfg_renorm_type '{type}' must be global, channel or text_channel."),
            } : defaults.CfgRenormType,
        };
        options.Validate();
        return options;
    }

    private static TextGenerationOptions TextOptions(Dictionary<string, string?> flags)
    {
        var defaults = new TextGenerationOptions();
        var options = new TextGenerationOptions
        {
            MaxLength = Int(flags, "--max_length", defaults.MaxLength),
            DoSample = flags.ContainsKey("--do_sample"),
            Temperature = Double(flags, "--temperature", defaults.Temperature),
        };
        options.Validate();
        return options;
    }

    private static ulong Seed(Dictionary<string, string?> flags)
    {
        if (!flags.TryGetValue("--seed", out string? text)) return 0;
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed)
            ? seed : throw new UsageException($"--seed '{text}' must be a non-negative integer.");
    }

    private static (int Height, int Width) ParseSize(string text)
    {
        string[] parts = text.ToLowerInvariant().Split('x');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            int h = int.Parse(parts[0], CultureInfo.InvariantCulture);
            return (h, parts.Length == 2 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : h);
        }
        throw new UsageException($"--size '{text}' must be N or HxW in pixels (e.g. 64 or 64x48).");
    }

    private static int Int(Dictionary<string, string?> flags, string name, int fallback) =>
        !flags.TryGetValue(name, out string? text) ? fallback
        : int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) ? value
        : throw new UsageException($"{name} '{text}' must be an integer.");

    private static double Double(Dictionary<string, string?> flags, string name, double fallback) =>
        !flags.TryGetValue(name, out string? text) ? fallback
        : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) ? value
        : throw new UsageException($"{name} '{text}' must be a number.");

    private static string Required(Dictionary<string, string?> flags, string name) =>
        flags.TryGetValue(name, out string? value) && !string.IsNullOrWhiteSpace(value) ? value : throw new UsageException($"{name} is required.");

    private static void Allow(Dictionary<string, string?> flags, string command, IEnumerable<string> allowed)
    {
        var set = allowed.ToHashSet(StringComparer.Ordinal);
        foreach (string name in flags.Keys)
            if (!set.Contains(name)) throw new UsageException($"'{command}' does not take {name}.");
    }

    private static Dictionary<string, string?> Parse(ReadOnlySpan<string> args)
    {
        var flags = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"Unexpected argument '{arg}'; flags start with --.");
            string name = arg, value;
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            else if (Switches.Contains(arg))
            {
                flags[arg] = null;
                continue;
            }
            else if (i + 1 < args.Length) value = args[++i];
            else throw new UsageException($"{arg} needs a value.");
            if (!flags.TryAdd(name, value)) throw new UsageException($"{name} is given twice.");
        }
        return flags;
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");

    private sealed class UsageException(string message) : Exception(message);
}
