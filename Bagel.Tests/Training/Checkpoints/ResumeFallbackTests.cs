using Bagel.Core.Native;
using Bagel.Core.StateDicts;
using Bagel.Tests.Core.Randomness;
using Bagel.Tests.Core.StateDicts;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Schedules;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Checkpoints;

/// <summary>Auto-resume passes over damaged checkpoints to the newest intact one; the load log tells the truth.</summary>
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class ResumeFallbackTests : IDisposable
{
    private readonly TempDirectory _root = new();

    public ResumeFallbackTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _root.Dispose();

    private string Dir => Path.Combine(_root.Path, "checkpoints");

    private string Folder(long steps) => Path.Combine(Dir, CheckpointLayout.FolderName(steps));

    /// <summary>Checkpoints after 4 and 8 steps of the tiny run.</summary>
    private void SaveFourAndEight()
    {
        using var run = new TinyTrainingRun();
        var checkpointer = new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), run.Components);
        run.Train(0, 4);
        checkpointer.Save(new TrainProgress(4), cancellationToken: TestContext.Current.CancellationToken);
        run.Train(4, 8);
        checkpointer.Save(new TrainProgress(8), cancellationToken: TestContext.Current.CancellationToken);
    }

    private static void Truncate(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        stream.SetLength(stream.Length / 2);
    }

    /// <summary>Rewrites <paramref name="file"/> from a fresh tiny model without the tensor <paramref name="dropped"/>.</summary>
    private static void RewriteWithout(string file, string dropped)
    {
        using var run = new TinyTrainingRun();
        StateDictSaver.SaveFile(run.Model, file, new StateDictSaveOptions { KeyMap = key => key == dropped ? null : key });
    }

    private RestoreResult AutoResume(ListLogger log)
    {
        using var resumed = new TinyTrainingRun(initSeed: 50);
        return new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), resumed.Components, log)
            .RestoreFromOptions(new TrainingOptions { AutoResume = true, CheckpointDir = Dir }, TestContext.Current.CancellationToken);
    }

    [Fact]
    public void ATruncatedLatestCheckpointIsSkippedWithAWarningAndTheOlderOneResumes()
    {
        SaveFourAndEight();
        Truncate(Path.Combine(Folder(8), CheckpointLayout.ModelFileName));
        var log = new ListLogger();

        RestoreResult result = AutoResume(log);

        Assert.Equal(4, result.StartStep);
        (LogLevel _, string warning) = Assert.Single(log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains(Folder(8), warning, StringComparison.Ordinal);
        Assert.Contains(CheckpointLayout.ModelFileName, warning, StringComparison.Ordinal);
    }

    [Fact]
    public void ALatestCheckpointMissingATensorIsSkippedNamingTheTensor()
    {
        SaveFourAndEight();
        RewriteWithout(Path.Combine(Folder(8), CheckpointLayout.EmaFileName), "fc2.bias");
        var log = new ListLogger();

        RestoreResult result = AutoResume(log);

        Assert.Equal(4, result.StartStep);
        Assert.Equal(4, result.State?.CompletedSteps);
        (LogLevel _, string warning) = Assert.Single(log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains(Folder(8), warning, StringComparison.Ordinal);
        Assert.Contains("fc2.bias", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void WhenNoCheckpointIsIntactTheErrorListsEachWithItsReason()
    {
        SaveFourAndEight();
        Truncate(Path.Combine(Folder(8), CheckpointLayout.ModelFileName));
        File.Delete(Path.Combine(Folder(4), CheckpointLayout.OptimizerFileName));

        var error = Assert.Throws<CheckpointException>(() => AutoResume(new ListLogger()));

        Assert.Contains(Folder(8), error.Message, StringComparison.Ordinal);
        Assert.Contains(Folder(4), error.Message, StringComparison.Ordinal);
        Assert.Contains(CheckpointLayout.OptimizerFileName, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheMisfitAdviceNamesOnlyFilesTheCheckpointHas()
    {
        SaveFourAndEight();
        RewriteWithout(Path.Combine(Folder(8), CheckpointLayout.ModelFileName), "fc1.weight");
        using var resumed = new TinyTrainingRun(initSeed: 50);
        var checkpointer = new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), resumed.Components);

        var error = Assert.Throws<CheckpointException>(() =>
            checkpointer.RestoreFromOptions(new TrainingOptions { ResumeFrom = Folder(8), CheckpointDir = Dir }, TestContext.Current.CancellationToken));

        Assert.Contains("fc1.weight", error.Message, StringComparison.Ordinal);
        foreach (string absent in new[] { "llm_config.json", "vit_config.json" })
        {
            Assert.False(File.Exists(Path.Combine(Folder(8), absent)));
            Assert.DoesNotContain(absent, error.Message, StringComparison.Ordinal);
        }
    }

    private sealed class TablesModel : Module<torch.Tensor, torch.Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc = Linear(4, 2);
        private readonly Table latent_pos_embed = new(seed: 1);

        public TablesModel() : base(nameof(TablesModel)) => RegisterComponents();

        public override torch.Tensor forward(torch.Tensor input) => fc.forward(input) + latent_pos_embed.pos_embed.sum();
    }

    private sealed class Table : Module
    {
        public Table(double seed) : base(nameof(Table))
        {
            pos_embed = new TorchSharp.Modules.Parameter(torch.full([3, 2], seed), requires_grad: false);
            RegisterComponents();
        }

        public readonly TorchSharp.Modules.Parameter pos_embed;
    }

    [Fact]
    public void AResumeLoadsStrictlyAndSaysTheRebuiltPositionTablesAreNotLoaded()
    {
        torch.manual_seed(3);
        TrainingComponents Components(TablesModel model)
        {
            var optimizer = AdamWFactory.Create(model, new AdamWOptions { LearningRate = 1e-2 });
            return new(model, optimizer, new LearningRateScheduler(optimizer, new ConstantWithWarmupSchedule(0)), EmaModel.Create(model, () => new TablesModel(), decay: 0.9));
        }
        using (var saved = new TablesModel())
            new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), Components(saved))
                .Save(new TrainProgress(0), cancellationToken: TestContext.Current.CancellationToken);
        var log = new ListLogger();
        using var restored = new TablesModel();

        new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), Components(restored), log)
            .RestoreFromOptions(new TrainingOptions { AutoResume = true, CheckpointDir = Dir }, TestContext.Current.CancellationToken);

        Assert.Contains("latent_pos_embed.pos_embed", restored.state_dict().Keys);
        Assert.DoesNotContain(log.Entries, e => e.Message.Contains("Non-strict", StringComparison.Ordinal));
        Assert.DoesNotContain(log.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("latent_pos_embed.pos_embed", StringComparison.Ordinal)
                                          && e.Message.Contains("rebuilt", StringComparison.Ordinal));
    }
}
