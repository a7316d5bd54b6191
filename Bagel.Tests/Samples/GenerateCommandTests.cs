using Bagel.Data.Images;
using Bagel.Generate;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Inference;
using Bagel.Training.Recipes;
using Xunit;

namespace Bagel.Tests.Samples;

/// <summary>A tiny-preset checkpoint made once (2 training steps) for the Bagel.Generate tests.</summary>
public sealed class TinyCheckpointFixture : IAsyncLifetime
{
    private readonly TempDirectory _folder = new("bagel-generate-");

    /// <summary>The preset's results folder.</summary>
    public string Results => Path.Combine(_folder.Path, "tiny-preset");

    /// <summary>The checkpoint step folder.</summary>
    public string Checkpoint { get; private set; } = "";

    /// <summary>A picture of the example data (an input for edit and ask).</summary>
    public string Picture { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = await TinyPreset.RunAsync(new TinyPresetOptions { ResultsDir = Results, TotalSteps = 2, SaveEvery = 2 }, stdout, stderr,
            TestContext.Current.CancellationToken);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr.ToString());
        Checkpoint = CheckpointCatalog.FindLatest(Path.Combine(Results, "checkpoints"))!.Folder;
        Picture = Directory.EnumerateFiles(Path.Combine(Results, TinyPreset.DataFolderName), "*.jpg", SearchOption.AllDirectories).First();
    }

    public ValueTask DisposeAsync()
    {
        _folder.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Bagel.Generate's three commands in-process on a tiny-preset checkpoint: the PNGs decode with SkiaSharp, the same
/// seed gives the same bytes, and bad input (checkpoint, image, size, flags) gives one line and exit code 2.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // the preset seeds torch's global generator
public sealed class GenerateCommandTests(TinyCheckpointFixture tiny) : IClassFixture<TinyCheckpointFixture>
{
    private static (int Exit, string Stdout, string Stderr) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = GenerateCommand.Run(args, stdout, stderr, TestContext.Current.CancellationToken);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Generate_WritesADecodablePng_AndTheSameSeedGivesTheSameImage()
    {
        using var folder = new TempDirectory();
        string a = Path.Combine(folder.Path, "a.png"), b = Path.Combine(folder.Path, "b.png"), c = Path.Combine(folder.Path, "c.png");
        string[] common = ["--checkpoint", tiny.Checkpoint, "--prompt", "a red square", "--steps", "3", "--size", "32x48", "--seed", "7"];
        (int exit, string stdout, string stderr) = Run(["generate", .. common, "--out", a]);
        Assert.True(exit == 0, stderr);
        Assert.Contains(a, stdout, StringComparison.Ordinal);
        RgbImage image = new ImageDecoder().DecodeFile(a);
        Assert.Equal((48, 32), (image.Width, image.Height));

        Assert.Equal(0, Run(["generate", .. common, "--out", b]).Exit);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.Equal(0, Run(["generate", .. common[..^1], "8", "--out", c, "--model"]).Exit);
        Assert.NotEqual(new ImageDecoder().DecodeFile(a).Pixels, new ImageDecoder().DecodeFile(c).Pixels);
    }

    [Fact]
    public void Edit_WritesAnImageOfTheInputsSize()
    {
        using var folder = new TempDirectory();
        string output = Path.Combine(folder.Path, "edited.png");
        (int exit, _, string stderr) = Run("edit", "--checkpoint", tiny.Results, "--image", tiny.Picture, "--instruction", "make it blue",
            "--out", output, "--steps", "2", "--cfg_renorm_type", "text_channel", "--cfg_interval", "0,1");
        Assert.True(exit == 0, stderr);
        RgbImage input = new ImageDecoder().DecodeFile(tiny.Picture);
        using BagelPipeline pipeline = BagelPipeline.Load(tiny.Checkpoint, cancellationToken: TestContext.Current.CancellationToken);
        (int w, int h) = pipeline.VaeTransform.ComputeResizeSize(input.Width, input.Height);
        RgbImage edited = new ImageDecoder().DecodeFile(output);
        Assert.Equal((w, h), (edited.Width, edited.Height));
    }

    [Fact]
    public void Ask_PrintsOneAnswer_GreedyIsDeterministic()
    {
        string[] args = ["ask", "--checkpoint", tiny.Checkpoint, "--image", tiny.Picture, "--question", "What is in the picture?", "--max_length", "6"];
        (int exit, string stdout, string stderr) = Run(args);
        Assert.True(exit == 0, stderr);
        Assert.Equal(stdout, Run(args).Stdout);
        Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).DefaultIfEmpty(""));
        (exit, _, stderr) = Run([.. args, "--do_sample", "--temperature", "1.0", "--seed", "3"]);
        Assert.True(exit == 0, stderr);
    }

    [Fact]
    public void BadInput_OneLineNamingIt_ExitCode2()
    {
        using var folder = new TempDirectory();
        string missing = Path.Combine(folder.Path, "nowhere");
        string notAnImage = folder.File("notes.png", "this is text");
        string empty = folder.Folder("empty");
        string broken = folder.Folder("broken");
        File.Copy(Path.Combine(tiny.Checkpoint, CheckpointLayout.RunInfoFileName), Path.Combine(broken, CheckpointLayout.RunInfoFileName));
        File.WriteAllBytes(Path.Combine(broken, CheckpointLayout.EmaFileName), [1, 2, 3]);
        string output = Path.Combine(folder.Path, "x.png");
        (string[] Args, string Named)[] cases =
        [
            (["generate", "--checkpoint", missing, "--prompt", "p", "--out", output], missing),
            (["generate", "--checkpoint", empty, "--prompt", "p", "--out", output], empty),
            (["generate", "--checkpoint", broken, "--prompt", "p", "--out", output], broken),
            (["generate", "--checkpoint", tiny.Checkpoint, "--prompt", "p", "--out", output, "--size", "50"], "50"),
            (["generate", "--checkpoint", tiny.Checkpoint, "--prompt", "p", "--out", output, "--size", "256"], "256"),
            (["edit", "--checkpoint", tiny.Checkpoint, "--image", notAnImage, "--instruction", "i", "--out", output], notAnImage),
            (["ask", "--checkpoint", tiny.Checkpoint, "--image", Path.Combine(folder.Path, "none.jpg"), "--question", "q"], "none.jpg"),
            (["generate", "--checkpoint", tiny.Checkpoint, "--prompt", "p", "--out", output, "--cfg_renorm_type", "sideways"], "sideways"),
            (["ask", "--checkpoint", tiny.Checkpoint, "--image", tiny.Picture], "--question"),
        ];
        foreach ((string[] args, string named) in cases)
        {
            (int exit, _, string stderr) = Run(args);
            string[] lines = [.. stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("Bagel.Generate: loaded", StringComparison.Ordinal))];
            Assert.True(exit == 2, $"{string.Join(' ', args)} → {exit}: {stderr}");
            Assert.Single(lines);
            Assert.Contains(named, lines[0], StringComparison.Ordinal);
        }
        Assert.False(File.Exists(output));
    }
}
