using Bagel.Tests.Core.Randomness;
using Bagel.Core.DataStatus;
using Bagel.Core.Native;
using Bagel.Core.Randomness;
using Bagel.Tests.Core.StateDicts;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Checkpoints;

// Seeds or draws from torch's process-wide generator: runs alone, as the other global-RNG tests.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class CheckpointWriterTests : IDisposable
{
    private readonly TempDirectory _root = new();

    public CheckpointWriterTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _root.Dispose();

    private string Dir => Path.Combine(_root.Path, "checkpoints");

    private static TrainState State(long steps) => new(TrainState.CurrentFormatVersion, steps, 1, 0, 100 * steps, 4 * steps, DateTimeOffset.UnixEpoch);

    private static CheckpointPart Text(string name, string content) => new(name, (path, _) => File.WriteAllText(path, content));

    [Fact]
    public void AFullCheckpointHasTheReferencesFilesAndOurs()
    {
        using var scope = torch.NewDisposeScope();
        var model = Sequential(("fc", Linear(2, 2)));
        using EmaModel ema = EmaModel.Create(model, () => Sequential(("fc", Linear(2, 2))));
        using AdamW optimizer = AdamWFactory.Create(model);
        var scheduler = new LearningRateScheduler(optimizer, new ConstantWithWarmupSchedule(3));
        using var streams = new RandomStreams(seed: 5);
        streams.For("timesteps").NextUniform();
        var status = new DataStatusDocument { WorldSize = 1, NumWorkers = 1, Step = 7, Ranks = [new RankDataStatus { Rank = 0 }] };
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir });

        CheckpointInfo saved = writer.Save(State(7), [
            CheckpointPart.Model(model), CheckpointPart.Ema(ema), CheckpointPart.Optimizer(optimizer), CheckpointPart.Scheduler(scheduler),
            CheckpointPart.DataStatus(status), CheckpointPart.Rng(streams), CheckpointPart.RunInfo(RunInfo.Capture(TrainingConfiguration.Defaults())),
        ], TestContext.Current.CancellationToken);

        Assert.Equal(Path.Combine(Dir, "0000007"), saved.Folder);
        Assert.Equal(
            ["data_status.json", "ema.safetensors", "model.safetensors", "optimizer.safetensors", "rng_state.json", "run_info.json", "scheduler.json", "train_state.json"],
            Directory.GetFiles(saved.Folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(7, TrainState.Read(saved.File(CheckpointLayout.TrainStateFileName)).CompletedSteps);
        RunInfo info = RunInfo.Read(saved.File(CheckpointLayout.RunInfoFileName));
        Assert.Equal(4396, info.Configuration.Training.GlobalSeed);
        Assert.Contains("TorchSharp", info.Versions.Keys);
        Assert.Single(Directory.GetDirectories(Dir));
    }

    [Fact]
    public void RngStateRestoresTheGlobalGeneratorAndEveryStream()
    {
        using var streams = new RandomStreams(seed: 9);
        streams.For("noise").NextUniform();
        string path = _root.File(CheckpointLayout.RngStateFileName);
        RngStateDocument.Capture(streams).Write(path);
        double expectedStream = streams.For("noise").NextUniform();
        float expectedTorch;
        using (torch.Tensor draw = torch.rand(1)) expectedTorch = draw.item<float>();

        streams.For("noise").NextUniform();
        using (torch.rand(3)) { }
        RngStateDocument.Read(path).Restore(streams);

        Assert.Equal(expectedStream, streams.For("noise").NextUniform());
        using torch.Tensor again = torch.rand(1);
        Assert.Equal(expectedTorch, again.item<float>());
    }

    [Fact]
    public void ACrashMidSaveLeavesThePreviousCheckpointIntactAndNoTempFolder()
    {
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir });
        writer.Save(State(10), [Text("model.safetensors", "ten")], TestContext.Current.CancellationToken);

        Assert.Throws<IOException>(() => writer.Save(State(20),
            [Text("model.safetensors", "twenty"), new CheckpointPart("ema.safetensors", (_, _) => throw new IOException("disk full"))],
            TestContext.Current.CancellationToken));

        CheckpointInfo? latest = CheckpointCatalog.FindLatest(Dir);
        Assert.Equal(10, latest?.CompletedSteps);
        Assert.Equal("ten", File.ReadAllText(latest!.File("model.safetensors")));
        Assert.Equal(["0000010"], Directory.GetDirectories(Dir).Select(Path.GetFileName));
    }

    [Fact]
    public void ATempFolderLeftByAKilledProcessIsIgnoredByDiscoveryAndCleanedByTheNextSave()
    {
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir });
        writer.Save(State(10), [Text("model.safetensors", "ten")], TestContext.Current.CancellationToken);
        // What a SIGKILL during the save of step 20 leaves: a temp folder with some files but no rename.
        string killed = Directory.CreateDirectory(Path.Combine(Dir, CheckpointLayout.TemporaryPrefix + "0000020-dead")).FullName;
        File.WriteAllText(Path.Combine(killed, CheckpointLayout.TrainStateFileName), "{}");
        var log = new ListLogger();

        Assert.Equal(10, CheckpointCatalog.FindLatest(Dir, log)?.CompletedSteps);
        Assert.Contains(log.Entries, e => e.Message.Contains(killed, StringComparison.Ordinal));

        writer.Save(State(20), [Text("model.safetensors", "twenty")], TestContext.Current.CancellationToken);
        Assert.False(Directory.Exists(killed));
        Assert.Equal(20, CheckpointCatalog.FindLatest(Dir)?.CompletedSteps);
    }

    [Fact]
    public void RetentionKeepsTheLastKCompleteCheckpoints()
    {
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir, KeepLast = 2 });

        foreach (long step in new long[] { 5, 10, 15, 20 })
            writer.Save(State(step), [Text("model.safetensors", step.ToString(System.Globalization.CultureInfo.InvariantCulture))], TestContext.Current.CancellationToken);

        Assert.Equal([15L, 20L], CheckpointCatalog.List(Dir).Select(c => c.CompletedSteps));
    }

    [Fact]
    public void SavingTheSameStepAgainReplacesTheFolder()
    {
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir });
        writer.Save(State(30), [Text("model.safetensors", "periodic")], TestContext.Current.CancellationToken);

        CheckpointInfo again = writer.Save(State(30), [Text("model.safetensors", "final")], TestContext.Current.CancellationToken);

        Assert.Equal("final", File.ReadAllText(again.File("model.safetensors")));
        Assert.Single(Directory.GetDirectories(Dir));
    }

    [Fact]
    public void DiscoveryIgnoresNonNumericAndIncompleteFoldersWithALogLine()
    {
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir });
        writer.Save(State(100), [], TestContext.Current.CancellationToken);
        Directory.CreateDirectory(Path.Combine(Dir, "best"));
        Directory.CreateDirectory(Path.Combine(Dir, "0000200")); // a reference-written or half-copied folder: no train_state.json
        var log = new ListLogger();

        IReadOnlyList<CheckpointInfo> all = CheckpointCatalog.List(Dir, log);

        Assert.Equal([100L], all.Select(c => c.CompletedSteps));
        Assert.Contains(log.Entries, e => e.Message.Contains("best", StringComparison.Ordinal) && e.Message.Contains("not a step number", StringComparison.Ordinal));
        Assert.Contains(log.Entries, e => e.Message.Contains("0000200", StringComparison.Ordinal) && e.Message.Contains("train_state.json", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("0000123", true, 123)]
    [InlineData("42", true, 42)]
    [InlineData("12a", false, 0)]
    [InlineData("-5", false, 0)]
    [InlineData("", false, 0)]
    public void FolderNamesParseAsTheReferencesIntName(string name, bool ok, long step)
    {
        Assert.Equal(ok, CheckpointLayout.TryParseFolderName(name, out long parsed));
        Assert.Equal(step, parsed);
        if (ok) Assert.Equal(7, CheckpointLayout.FolderName(step).Length);
    }
}
