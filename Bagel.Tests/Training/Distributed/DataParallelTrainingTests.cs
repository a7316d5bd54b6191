using System.Diagnostics;
using System.Globalization;
using Bagel.Core.DataStatus;
using Bagel.Core.Distributed;
using Bagel.Core.StateDicts;
using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Sources;
using Bagel.Models.Bagel;
using Bagel.Tests.Data.Pipeline;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Distributed;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Options;
using Bagel.Training.Recipes;
using TorchSharp;

namespace Bagel.Tests.Training.Distributed;

/// <summary>
/// Data-parallel training on 2 ranks (Open MPI, started by the tests through mpirun): equal to one process over the same
/// global batches, exact resume, a dead rank reported by the survivor, and the tiny preset through Bagel.Train's launcher.
/// </summary>
public sealed class DataParallelTrainingTests
{
    private const string OutVariable = "BAGEL_TEST_DP_OUT";
    private const string TinyVariable = "BAGEL_TEST_DP_TINY";

    private const int Steps = 4;

    // The uninterrupted 2-rank run of Steps steps, shared by the tests of this class (they run one at a time).
    private static readonly Lazy<TempDirectory> Straight = new(() =>
    {
        var folder = new TempDirectory("bagel-dp-straight-");
        RunRanks(folder.Path, steps: Steps);
        return folder;
    });

    [Fact]
    public async Task TwoRanksEqualOneProcessOverTheSameGlobalBatches()
    {
        MpiRun.SkipIfUnavailable();
        TempDirectory folder = Straight.Value;

        // One process, the same two shards per step, each loss over the global token counts, gradients accumulated;
        // one thread, as each rank runs, set around each step's synchronous compute only: torch's count belongs to the
        // OS thread, and a count set before an await would be put back on another thread, leaving a pool thread at 1.
        using var data = new ShardedData();
        DataPipeline shard0 = await data.PipelineAsync(0, 2), shard1 = await data.PipelineAsync(1, 2);
        using var model = new TinyPackedModel(seed: 1);
        using var session = new TrainingSession(model, Configuration(Path.Combine(data.Root, "single"), data.Root, Steps), new TrainingSessionOptions { ProcessGroup = SingleProcessGroup.Instance });
        session.Restore(TestContext.Current.CancellationToken);
        model.Module.train();
        await using var batches0 = shard0.ReadAsync(null, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        await using var batches1 = shard1.ReadAsync(null, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        var expected = new List<(double Ce, double Mse, long CeTokens, long MseTokens)>();
        for (int step = 0; step < Steps; step++)
        {
            Assert.True(await batches0.MoveNextAsync() && await batches1.MoveNextAsync());
            using var batch0 = batches0.Current;
            using var batch1 = batches1.Current;
            using var threads = TorchThreads.Use(1);
            using var scope = torch.NewDisposeScope();
            ModelLossOutputs out0 = model.Forward(batch0), out1 = model.Forward(batch1);
            long ceTokens = (out0.CePerToken?.shape[0] ?? 0) + (out1.CePerToken?.shape[0] ?? 0);
            long mseTokens = (out0.MseSquaredError?.shape[0] ?? 0) + (out1.MseSquaredError?.shape[0] ?? 0);
            LossNormalizers Global(long c, long m, double w) => new(1, ceTokens, mseTokens, 0);
            double ce = 0, mse = 0, total = 0;
            foreach (ModelLossOutputs outputs in (ModelLossOutputs[])[out0, out1])
            {
                StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, session.LossWeights, Global);
                loss.Total.backward();
                (ce, mse, total) = (ce + loss.Ce.item<float>(), mse + loss.Mse.item<float>(), total + loss.Total.item<float>());
            }
            session.Stepper.Step(step, total);
            expected.Add((ce, mse, ceTokens, mseTokens));
        }

        using var distributed = new TinyPackedModel(seed: 77);
        StateDictLoader.Load(distributed.Module, Path.Combine(folder.Path, "ckpt", CheckpointLayout.FolderName(Steps), CheckpointLayout.ModelFileName), cancellationToken: TestContext.Current.CancellationToken);
        var reference = model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in distributed.Module.named_parameters())
        {
            using torch.Tensor difference = (parameter - reference[name]).abs().max();
            using torch.Tensor scale = reference[name].abs().max();
            double relative = difference.item<float>() / Math.Max(scale.item<float>(), 1e-12);
            Assert.True(relative <= 1e-6, $"{name}: the 2-rank weights differ from one process's by {relative:E2} relative.");
        }

        string[] logged = File.ReadAllLines(Path.Combine(folder.Path, "losses-rank0.txt"));
        Assert.Equal(Steps, logged.Length);
        for (int step = 0; step < Steps; step++)
        {
            string[] f = logged[step].Split(' ');
            Assert.Equal(step.ToString(CultureInfo.InvariantCulture), f[0]);
            AssertClose(expected[step].Ce, double.Parse(f[1], CultureInfo.InvariantCulture), $"CE of step {step}");
            AssertClose(expected[step].Mse, double.Parse(f[2], CultureInfo.InvariantCulture), $"MSE of step {step}");
            Assert.Equal((expected[step].CeTokens, expected[step].MseTokens), (long.Parse(f[4], CultureInfo.InvariantCulture), long.Parse(f[5], CultureInfo.InvariantCulture)));
        }
        Assert.Equal(logged, File.ReadAllLines(Path.Combine(folder.Path, "losses-rank1.txt"))); // every rank logs the same reduced figures
    }

    [Fact]
    public void TwoRanksStoppedByOneRankAndResumedEqualAnUninterruptedRunBitForBit()
    {
        MpiRun.SkipIfUnavailable();
        TempDirectory straight = Straight.Value;
        using var resumed = new TempDirectory("bagel-dp-resumed-");
        // Rank 1 alone is cancelled, during the callbacks of its second step (2 completed); the ranks agree on a stop in
        // the next step's all-reduce, so both finish that step and stop with 3 completed, one final checkpoint by rank 0.
        RunRanks(resumed.Path, steps: Steps, stopAfter: 2);
        Assert.Equal("3 True", File.ReadAllText(Path.Combine(resumed.Path, "result-rank0.txt")));
        Assert.Equal("3 True", File.ReadAllText(Path.Combine(resumed.Path, "result-rank1.txt")));
        RunRanks(resumed.Path, steps: Steps);
        Assert.Equal("4 False", File.ReadAllText(Path.Combine(resumed.Path, "result-rank0.txt")));

        string final = CheckpointLayout.FolderName(Steps);
        foreach (string file in (string[])[CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName])
            Assert.True(File.ReadAllBytes(Path.Combine(straight.Path, "ckpt", final, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(resumed.Path, "ckpt", final, file))),
                $"{file} of the stopped-and-resumed run differs from the uninterrupted run's.");
        DataStatusDocument status = DataStatusFile.Read(Path.Combine(resumed.Path, "ckpt", CheckpointLayout.FolderName(3), CheckpointLayout.DataStatusFileName));
        Assert.Equal(2, status.WorldSize);
        Assert.Equal([0, 1], status.Ranks.Select(r => r.Rank));
    }

    [Fact]
    public void ARankThatDiesMakesTheOtherStopWithinTheTimeoutNamingIt()
    {
        using var folder = new TempDirectory("bagel-dp-kill-");
        const int timeoutSeconds = 5;
        // --enable-recovery: mpirun lets the survivor run on (plain mpirun would end the job itself, naming the dead rank).
        var (result, _) = MpiRun.Run(typeof(DataParallelTrainingTests), nameof(ChildTrains), 2, Variables(folder.Path, steps: 50, killAfter: 2, timeoutSeconds: timeoutSeconds),
            TimeSpan.FromMinutes(3), enableRecovery: true);
        // (mpirun --enable-recovery exits 0 even though rank 0 failed: the rank's own report is what is checked.)
        string errorFile = Path.Combine(folder.Path, "error-rank0.txt");
        Assert.True(File.Exists(errorFile), $"Rank 0 reported no error:\n{result.Combined}");
        string error = File.ReadAllText(errorFile);
        Assert.Contains("rank 1 (pid", error, StringComparison.Ordinal);
        Assert.Contains("has exited", error, StringComparison.Ordinal);
        double killedAt = double.Parse(File.ReadAllText(Path.Combine(folder.Path, "killed-rank1.txt")), CultureInfo.InvariantCulture);
        double stoppedAt = double.Parse(File.ReadAllText(Path.Combine(folder.Path, "stopped-rank0.txt")), CultureInfo.InvariantCulture);
        Assert.True(stoppedAt - killedAt < timeoutSeconds + 10, $"Rank 0 stopped {stoppedAt - killedAt:0.0} s after rank 1 died; the timeout is {timeoutSeconds} s.");
    }

    [Fact]
    public async Task TheLauncherRunsTheTinyPresetOnTwoRanks()
    {
        MpiRun.SkipIfUnavailable();
        using var folder = new TempDirectory("bagel-dp-tiny-");
        List<string> command = MpiRun.TestMethodCommand(typeof(DataParallelTrainingTests), nameof(ChildRunsTheTinyPreset));
        var errors = new StringWriter();
        int exit = await LocalLauncher.RunAsync(new LauncherRequest(2), LauncherMode.Mpirun, command[0], command[1..], errors,
            new Dictionary<string, string> { [TinyVariable] = folder.Path }, TestContext.Current.CancellationToken);
        Assert.True(exit == 0, $"The launcher's ranks failed ({exit}): {errors}");
        string results = Path.Combine(folder.Path, "results");
        DataStatusDocument status = DataStatusFile.Read(Path.Combine(results, "checkpoints", CheckpointLayout.FolderName(2), CheckpointLayout.DataStatusFileName));
        Assert.Equal(2, status.WorldSize);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(results, "metrics.jsonl")).Length); // rank 0 alone writes metrics
        Assert.Equal("0 1", File.ReadAllText(Path.Combine(folder.Path, "ranks.txt")).Trim());
    }

    [Fact]
    public async Task ChildRunsTheTinyPreset()
    {
        string? folder = Environment.GetEnvironmentVariable(TinyVariable);
        if (folder is null) Assert.Skip($"Runs only under mpirun, from {nameof(TheLauncherRunsTheTinyPresetOnTwoRanks)}.");
        torch.set_num_threads(1);
        var launch = LaunchEnvironment.FromEnvironment();
        int exit = await TinyPreset.RunAsync(new TinyPresetOptions { ResultsDir = Path.Combine(folder, "results"), TotalSteps = 2, SaveEvery = 100 }, TextWriter.Null, Console.Error, TestContext.Current.CancellationToken);
        Assert.Equal(TrainCommand.ExitSuccess, exit);
        if (launch.Rank == 1) File.WriteAllText(Path.Combine(folder, "ranks.txt"), $"{launch.Rank - 1} {launch.Rank}");
    }

    [Fact]
    public async Task ChildTrains()
    {
        string? folder = Environment.GetEnvironmentVariable(OutVariable);
        if (folder is null) Assert.Skip("Runs only under mpirun, from the data-parallel tests.");
        int Setting(string name) => int.Parse(Environment.GetEnvironmentVariable(name) ?? "0", CultureInfo.InvariantCulture);
        int steps = Setting("BAGEL_TEST_DP_STEPS"), stopAfter = Setting("BAGEL_TEST_DP_STOP_AFTER"), killAfter = Setting("BAGEL_TEST_DP_KILL_AFTER");
        torch.set_num_threads(1);
        using var group = new MpiProcessGroup(TimeSpan.FromSeconds(Setting("BAGEL_TEST_DP_TIMEOUT")));
        int rank = group.Rank;
        using var data = new ShardedData();
        DataPipeline pipeline = await data.PipelineAsync(rank, group.WorldSize);
        using var model = new TinyPackedModel(seed: 1 + 1000 * rank); // rank 1 starts elsewhere: the broadcast must fix it
        using var stop = new CancellationTokenSource();
        var lines = new List<string>();
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(pipeline).UseOptions(Configuration(Path.Combine(folder, "ckpt"), data.Root, steps))
            .UseProcessGroup(group).UseDefaultMetricSinks(false)
            .OnStep(report =>
            {
                lines.Add(string.Join(' ', report.Step, report.Ce.ToString("R", CultureInfo.InvariantCulture), report.Mse.ToString("R", CultureInfo.InvariantCulture),
                    report.TotalLoss.ToString("R", CultureInfo.InvariantCulture), report.CeTokens, report.MseTokens));
                if (rank == 1 && report.Step + 1 == stopAfter) stop.Cancel();
                if (rank == 1 && report.Step + 1 == killAfter)
                {
                    File.WriteAllText(Path.Combine(folder, "killed-rank1.txt"), Now());
                    Process.GetCurrentProcess().Kill(); // SIGKILL: no clean-up, as a crashed node
                }
            })
            .Build();
        try
        {
            TrainingRunResult result = await trainer.RunAsync(stop.Token);
            File.WriteAllText(Path.Combine(folder, $"result-rank{rank}.txt"), $"{result.CompletedSteps} {result.Cancelled}");
            File.WriteAllLines(Path.Combine(folder, $"losses-rank{rank}.txt"), lines);
        }
        catch (DistributedException e)
        {
            File.WriteAllText(Path.Combine(folder, $"stopped-rank{rank}.txt"), Now());
            File.WriteAllText(Path.Combine(folder, $"error-rank{rank}.txt"), e.Message);
            throw;
        }
    }

    private static string Now() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds.ToString("R", CultureInfo.InvariantCulture);

    private static Dictionary<string, string> Variables(string folder, int steps, int stopAfter = 0, int killAfter = 0, int timeoutSeconds = 120) => new()
    {
        [OutVariable] = folder,
        ["BAGEL_TEST_DP_STEPS"] = steps.ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_DP_STOP_AFTER"] = stopAfter.ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_DP_KILL_AFTER"] = killAfter.ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_DP_TIMEOUT"] = timeoutSeconds.ToString(CultureInfo.InvariantCulture),
    };

    private static void RunRanks(string folder, int steps, int stopAfter = 0)
    {
        var (result, _) = MpiRun.Run(typeof(DataParallelTrainingTests), nameof(ChildTrains), 2, Variables(folder, steps, stopAfter), TimeSpan.FromMinutes(3));
        Assert.True(result.ExitCode == 0, $"mpirun failed ({result.ExitCode}):\n{result.Combined}");
    }

    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-6 * Math.Max(Math.Abs(expected), 1e-12), $"{what}: one process {expected:R}, 2 ranks {actual:R}.");

    internal static TrainingConfiguration Configuration(string checkpoints, string root, int totalSteps)
    {
        TrainingConfiguration configuration = TrainingConfiguration.Defaults();
        configuration.Data.NumWorkers = ShardedData.Workers;
        TrainingOptions training = configuration.Training;
        (training.TotalSteps, training.SaveEvery, training.LogEvery, training.Lr, training.WarmupSteps, training.Ema) = (totalSteps, 1000, 1, 2e-2, 2, 0.9);
        training.CheckpointDir = checkpoints;
        training.ResultsDir = root;
        training.AutoResume = true;
        training.ShardingStrategy = "NO_SHARD"; // plain data parallelism (the reference's default HYBRID_SHARD shards over several ranks)
        return configuration;
    }

    /// <summary>The loop tests' data (LoopFixture's two groups), read as one rank's shard of a world.</summary>
    internal sealed class ShardedData : IDisposable
    {
        public const int Workers = 1;
        private static readonly PackingOptions SmallPacks = new()
        {
            ExpectedNumTokens = 120, MaxNumTokens = 128, MaxNumTokensPerSample = 128, PreferBufferBefore = 60, MaxBufferSize = 4,
            TextCondDropoutProb = 0.1, VitCondDropoutProb = 0.1, VaeCondDropoutProb = 0.1, MaxLatentSize = 4, MaxNumPatchPerSide = 70,
        };
        private readonly PipelineFixture _data = new();
        private readonly int _t2iFiles;
        private DataGroup[]? _groups;

        /// <summary>The data; <paramref name="t2iFiles"/> text-to-image files (each rank x worker needs one: 4 for 4 ranks).</summary>
        public ShardedData(int t2iFiles = 2) => _t2iFiles = t2iFiles;

        public string Root => _data.Directory.Path;

        public async Task<DataPipeline> PipelineAsync(int rank, int worldSize)
        {
            var skips = new DataSkipCounters();
            if (_groups is null)
            {
                string t2i = await _data.WriteT2IAsync(_t2iFiles, 6, 3);
                var (jsonl, images) = _data.WriteVlm(12);
                _groups =
                [
                    new DataGroup("t2i_pretrain", 1, false, new T2IParquetSource("t2i_pretrain", [t2i], [_t2iFiles]), _data.Builder(skips, PipelineFixture.Vae)),
                    new DataGroup("vlm_sft", 1, false, new VlmJsonlSource("vlm_sft", [jsonl], [images], [12]), _data.Builder(skips, PipelineFixture.Vit)),
                ];
            }
            return _data.Pipeline(_groups, new DataPipelineOptions { NumWorkers = Workers, PrefetchFactor = 2, DataSeed = 5, Packing = SmallPacks, Rank = rank, WorldSize = worldSize }, skips);
        }

        public void Dispose() => _data.Dispose();
    }
}
