using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Distributed;
using Bagel.Core.SafeTensors;
using Bagel.Data.Pipeline;
using Bagel.Models.Bagel;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Distributed;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Options;
using Bagel.Training.Sharding;
using TorchSharp;
using ShardedData = Bagel.Tests.Training.Distributed.DataParallelTrainingTests.ShardedData;

namespace Bagel.Tests.Training.Sharding;

/// <summary>
/// Optimizer-state and gradient sharding (ZeRO-1/2): one process against plain data parallelism, then 2 ranks under
/// Open MPI against the 2-rank data-parallel run (weights and EMA within 1e-6 relative, state per rank halved), the
/// streamed whole-model files, exact resume on 2 ranks and re-sliced resume in 1 process, and a rank killed mid-save.
/// </summary>
public sealed class ShardedTrainingTests
{
    private const string OutVariable = "BAGEL_TEST_SHARD_OUT";
    private const int Steps = 4;

    // The uninterrupted 2-rank runs of Steps steps, one per mode, shared by the tests of this class.
    private static readonly Lazy<TempDirectory> DataParallelRun = new(() => Run2(ShardingMode.None));
    private static readonly Lazy<TempDirectory> OptimizerShardRun = new(() => Run2(ShardingMode.OptimizerState));
    private static readonly Lazy<TempDirectory> GradientShardRun = new(() => Run2(ShardingMode.Gradients));

    // The same with a 2-layer Qwen2 backbone in the model, for parameter sharding (FULL_SHARD) against data parallelism.
    private const int DecoderLayers = 2;
    private static readonly Lazy<TempDirectory> DataParallelDecoderRun = new(() => Run2(ShardingMode.None, DecoderLayers));
    private static readonly Lazy<TempDirectory> FullShardRun = new(() => Run2(ShardingMode.Parameters, DecoderLayers));

    private static TempDirectory Run2(ShardingMode mode, int layers = 0)
    {
        var folder = new TempDirectory($"bagel-shard-{mode}-{layers}-");
        RunRanks(folder.Path, mode, Steps, layers: layers);
        return folder;
    }

    [Fact]
    public void FourRanksInTwoShardGroupsOfTwoEqualFourRankDataParallelWithGradientAndWithParameterSharding()
    {
        MpiRun.SkipIfUnavailable();
        using var dp = new TempDirectory("bagel-shard-dp4-");
        using var hybrid = new TempDirectory("bagel-shard-hybrid4-");
        using var hybridFull = new TempDirectory("bagel-shard-hybrid4-full-");
        RunRanks(dp.Path, ShardingMode.None, Steps, ranks: 4, layers: DecoderLayers);
        RunRanks(hybrid.Path, ShardingMode.Gradients, Steps, ranks: 4, shardRanks: 2, layers: DecoderLayers); // _HYBRID_SHARD_ZERO2 with num_shard 2
        RunRanks(hybridFull.Path, ShardingMode.Parameters, Steps, ranks: 4, shardRanks: 2, layers: DecoderLayers); // parameter sharding within groups of 2
        string expected = Path.Combine(dp.Path, "ckpt", CheckpointLayout.FolderName(Steps));
        long[] dpState = StateElements(dp.Path, 4);
        foreach (string run in (string[])[hybrid.Path, hybridFull.Path])
        {
            string actual = Path.Combine(run, "ckpt", CheckpointLayout.FolderName(Steps));
            foreach (string file in (string[])[CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName])
                AssertSameFileTensors(Path.Combine(expected, file), Path.Combine(actual, file), 1e-6);
            // Two shards (one per rank of a shard group), written by rank 0's group; every rank holds half the state.
            Assert.Equal([ShardedStateFiles.OptimizerFileName(0, 2), ShardedStateFiles.OptimizerFileName(1, 2)], ShardedStateFiles.OptimizerFiles(actual).Select(Path.GetFileName));
            Assert.All(StateElements(run, 4), e => Assert.Equal(3 * ((dpState[0] / 3 + 1) / 2), e));
        }
    }

    [Theory]
    [InlineData(ShardingMode.OptimizerState)]
    [InlineData(ShardingMode.Gradients)]
    public async Task OneProcessShardedEqualsDataParallel(ShardingMode mode)
    {
        using var data = new ShardedData();
        var reference = await TrainInProcess(data, ShardingMode.None, "dp");
        var sharded = await TrainInProcess(data, mode, mode.ToString());
        foreach ((string name, torch.Tensor expected) in reference.Weights) AssertClose(expected, sharded.Weights[name], $"weight {name}");
        foreach ((string name, torch.Tensor expected) in reference.Ema) AssertClose(expected, sharded.Ema[name], $"EMA {name}");
    }

    [Fact]
    public async Task OneProcessFullShardEqualsDataParallelAndHoldsADecoderLayerOnlyWhileItRuns()
    {
        using var data = new ShardedData();
        // Two micro-batches per step: the layers' gradients are reduced after each backward and accumulate in the shard.
        double dpEmaLoss = 0, shardedEmaLoss = 0;
        var reference = await TrainInProcess(data, ShardingMode.None, "dp-layers", DecoderLayers, microBatches: 2, check: (session, model, batch) =>
        {
            using var ema = new TinyPackedModel(seed: 9, decoderLayers: DecoderLayers);
            using (torch.no_grad())
            {
                var weights = session.Ema.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
                foreach (var (name, parameter) in ema.Module.named_parameters()) parameter.copy_(weights[name]);
            }
            dpEmaLoss = SummedLoss(ema, batch);
        });
        var sharded = await TrainInProcess(data, ShardingMode.Parameters, "full", DecoderLayers, microBatches: 2, check: (session, model, batch) =>
        {
            ShardedOptimizer full = session.ShardedOptimizer!;
            // The module computes with the EMA shards inside ComputeWithEma (each layer gathered from them), and with the
            // trained weights again after it.
            double trained = SummedLoss(model, batch);
            using (full.ComputeWithEma()) shardedEmaLoss = SummedLoss(model, batch);
            Assert.Equal(trained, SummedLoss(model, batch));
            Assert.NotEqual(trained, shardedEmaLoss);
            Assert.Equal(DecoderLayers, full.ShardedLayers);
            Assert.True(model.Network.decoder!.GradientCheckpointing, "parameter sharding turns activation checkpointing on");
            Assert.All(model.Network.decoder.Layers.SelectMany(l => l.parameters()), p => Assert.Equal(0, p.numel())); // released between steps
            Assert.InRange(full.PeakGatheredLayerBytes, 1, full.LargestLayerBytes); // one layer at a time, forward and backward
        });
        Assert.Equal(reference.Weights.Keys.Order(), sharded.Weights.Keys.Order());
        foreach ((string name, torch.Tensor expected) in reference.Weights) AssertClose(expected, sharded.Weights[name], $"weight {name}");
        foreach ((string name, torch.Tensor expected) in reference.Ema) AssertClose(expected, sharded.Ema[name], $"EMA {name}");
        Assert.True(Math.Abs(shardedEmaLoss - dpEmaLoss) <= 1e-5 * Math.Abs(dpEmaLoss), $"the EMA forward: sharded {shardedEmaLoss}, data parallel's EMA module {dpEmaLoss}");
    }

    /// <summary>One micro-batch's forward and backward, its losses over its own token counts; returns the total loss.</summary>
    internal static float ForwardBackward(TinyPackedModel model, TrainingSession session, PackedBatch batch)
    {
        using var scope = torch.NewDisposeScope();
        ModelLossOutputs outputs = model.Forward(batch);
        StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, session.LossWeights, (c, m, w) => new LossNormalizers(1, c, m, w));
        loss.Total.backward();
        return loss.Total.item<float>();
    }

    /// <summary>A forward without gradients: the sum of the per-token CE and squared errors.</summary>
    private static double SummedLoss(TinyPackedModel model, PackedBatch batch)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        ModelLossOutputs outputs = model.Forward(batch);
        return (outputs.CePerToken?.sum().to(torch.float64).item<double>() ?? 0) + (outputs.MseSquaredError?.sum().to(torch.float64).item<double>() ?? 0);
    }

    [Fact]
    public void TwoRanksFullShardEqualDataParallelWithHalfTheStateAndOneLayerGatheredAtATime()
    {
        MpiRun.SkipIfUnavailable();
        string dp = Path.Combine(DataParallelDecoderRun.Value.Path, "ckpt", CheckpointLayout.FolderName(Steps));
        string full = Path.Combine(FullShardRun.Value.Path, "ckpt", CheckpointLayout.FolderName(Steps));
        foreach (string file in (string[])[CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName])
            AssertSameFileTensors(Path.Combine(dp, file), Path.Combine(full, file), 1e-6);
        Assert.Equal([ShardedStateFiles.OptimizerFileName(0, 2), ShardedStateFiles.OptimizerFileName(1, 2)], ShardedStateFiles.OptimizerFiles(full).Select(Path.GetFileName));
        long[] dpState = StateElements(DataParallelDecoderRun.Value.Path), fullState = StateElements(FullShardRun.Value.Path);
        long n = dpState[0] / 3;
        Assert.Equal([3 * ((n + 1) / 2), 3 * ((n + 1) / 2)], fullState);
        for (int rank = 0; rank < 2; rank++)
        {
            long[] figures = [.. File.ReadAllText(Path.Combine(FullShardRun.Value.Path, $"layers-rank{rank}.txt")).Split(' ').Select(t => long.Parse(t, CultureInfo.InvariantCulture))];
            Assert.True(figures[0] > 0 && figures[0] <= figures[1], $"rank {rank} held {figures[0]} bytes of gathered decoder layers at once; the largest layer has {figures[1]}.");
            Assert.Equal(0, figures[2]); // no decoder layer whole between steps
        }
        // The streamed checkpoint: rank 0 held at most one whole tensor of the gathers at once.
        long peak = long.Parse(File.ReadAllText(Path.Combine(FullShardRun.Value.Path, "peak-rank0.txt")), CultureInfo.InvariantCulture);
        using var model = new TinyPackedModel(seed: 1, decoderLayers: DecoderLayers);
        Assert.InRange(peak, 1, model.Module.parameters().Max(p => p.numel()) * sizeof(float));
    }

    [Theory]
    [InlineData(ShardingMode.OptimizerState)]
    [InlineData(ShardingMode.Gradients)]
    public void TwoRanksShardedEqualDataParallelWithHalfTheStatePerRank(ShardingMode mode)
    {
        MpiRun.SkipIfUnavailable();
        string dp = Path.Combine(DataParallelRun.Value.Path, "ckpt", CheckpointLayout.FolderName(Steps));
        string sharded = Path.Combine((mode == ShardingMode.Gradients ? GradientShardRun : OptimizerShardRun).Value.Path, "ckpt", CheckpointLayout.FolderName(Steps));
        foreach (string file in (string[])[CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName])
            AssertSameFileTensors(Path.Combine(dp, file), Path.Combine(sharded, file), 1e-6);
        Assert.False(File.Exists(Path.Combine(sharded, CheckpointLayout.OptimizerFileName)));
        Assert.Equal([ShardedStateFiles.OptimizerFileName(0, 2), ShardedStateFiles.OptimizerFileName(1, 2)], ShardedStateFiles.OptimizerFiles(sharded).Select(Path.GetFileName));

        // Measured per rank: the elements of AdamW moments and EMA each rank allocated (data parallel: 3·N; sharded: 3·⌈N/2⌉).
        string root = Path.GetDirectoryName(Path.GetDirectoryName(sharded))!;
        long[] dpState = StateElements(DataParallelRun.Value.Path), shardState = StateElements(root);
        long n = dpState[0] / 3;
        Assert.Equal([3 * n, 3 * n], dpState);
        Assert.Equal([3 * ((n + 1) / 2), 3 * ((n + 1) / 2)], shardState);
    }

    [Fact]
    public async Task TheStreamedModelFileHoldsTheReferenceTensorsAndRankZeroHeldOneTensorAtATime()
    {
        MpiRun.SkipIfUnavailable();
        string folder = OptimizerShardRun.Value.Path;
        string final = Path.Combine(folder, "ckpt", CheckpointLayout.FolderName(Steps));

        // One process over the same global batches (both shards per step, losses over the global token counts,
        // gradients accumulated), as the data-parallel test computes it: the streamed file's tensors equal its weights.
        using (var data = new ShardedData())
        {
            DataPipeline shard0 = await data.PipelineAsync(0, 2), shard1 = await data.PipelineAsync(1, 2);
            using var single = new TinyPackedModel(seed: 1);
            using var session = new TrainingSession(single, DataParallelTrainingTests.Configuration(Path.Combine(data.Root, "single"), data.Root, Steps),
                new TrainingSessionOptions { ProcessGroup = SingleProcessGroup.Instance });
            session.Restore(TestContext.Current.CancellationToken);
            single.Module.train();
            await using var batches0 = shard0.ReadAsync(null, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
            await using var batches1 = shard1.ReadAsync(null, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
            for (int step = 0; step < Steps; step++)
            {
                Assert.True(await batches0.MoveNextAsync() && await batches1.MoveNextAsync());
                using var batch0 = batches0.Current;
                using var batch1 = batches1.Current;
                using var scope = torch.NewDisposeScope();
                ModelLossOutputs out0 = single.Forward(batch0), out1 = single.Forward(batch1);
                long ceTokens = (out0.CePerToken?.shape[0] ?? 0) + (out1.CePerToken?.shape[0] ?? 0);
                long mseTokens = (out0.MseSquaredError?.shape[0] ?? 0) + (out1.MseSquaredError?.shape[0] ?? 0);
                double stepLoss = 0;
                foreach (ModelLossOutputs outputs in (ModelLossOutputs[])[out0, out1])
                {
                    StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, session.LossWeights, (c, m, w) => new LossNormalizers(1, ceTokens, mseTokens, 0));
                    loss.Total.backward();
                    stepLoss += loss.Total.item<float>();
                }
                session.Stepper.Step(step, stepLoss);
            }
            using SafeTensorsReader streamed = SafeTensorsReader.Open(Path.Combine(final, CheckpointLayout.ModelFileName));
            foreach ((string name, TorchSharp.Modules.Parameter parameter) in single.Module.named_parameters())
            {
                using torch.Tensor saved = streamed.ReadTensor(name);
                AssertClose(parameter.detach(), saved, $"streamed model.safetensors {name} against one process");
            }
        }
        using (SafeTensorsReader dp = SafeTensorsReader.Open(Path.Combine(DataParallelRun.Value.Path, "ckpt", CheckpointLayout.FolderName(Steps), CheckpointLayout.ModelFileName)))
        using (SafeTensorsReader sharded = SafeTensorsReader.Open(Path.Combine(final, CheckpointLayout.ModelFileName)))
        {
            Assert.Equal(dp.Tensors.Select(t => (t.Name, t.DType, t.ShapeText)), sharded.Tensors.Select(t => (t.Name, t.DType, t.ShapeText)));
        }
        // The largest whole tensor the gathers produced, against the most rank 0 held at once (measured by the writer).
        long peak = long.Parse(File.ReadAllText(Path.Combine(folder, "peak-rank0.txt")), CultureInfo.InvariantCulture);
        using var model = new TinyPackedModel(seed: 1);
        long largest = model.Module.parameters().Max(p => p.numel()) * sizeof(float);
        long total = model.Module.parameters().Sum(p => p.numel()) * sizeof(float);
        Assert.True(peak > 0 && peak <= largest, $"Rank 0 held {peak} bytes of gathered tensors at once; the largest tensor has {largest} (the model {total}).");
    }

    [Theory]
    [InlineData(ShardingMode.Gradients, 0)]
    [InlineData(ShardingMode.Parameters, DecoderLayers)]
    public async Task TwoRanksStoppedAndResumedOnTwoRanksEqualTheUninterruptedRunBitForBit(ShardingMode mode, int layers)
    {
        MpiRun.SkipIfUnavailable();
        TempDirectory straight = (mode == ShardingMode.Parameters ? FullShardRun : GradientShardRun).Value;
        using var resumed = new TempDirectory("bagel-shard-resumed-");
        RunRanks(resumed.Path, mode, Steps, stopAfter: 2, layers: layers);
        Assert.Equal("3 True", File.ReadAllText(Path.Combine(resumed.Path, "result-rank0.txt")));
        RunRanks(resumed.Path, mode, Steps, layers: layers);
        Assert.Equal("4 False", File.ReadAllText(Path.Combine(resumed.Path, "result-rank0.txt")));
        string final = CheckpointLayout.FolderName(Steps);
        foreach (string file in (string[])[CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, ShardedStateFiles.OptimizerFileName(0, 2), ShardedStateFiles.OptimizerFileName(1, 2)])
            Assert.True(File.ReadAllBytes(Path.Combine(straight.Path, "ckpt", final, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(resumed.Path, "ckpt", final, file))),
                $"{file} of the stopped-and-resumed run differs from the uninterrupted run's.");

        // The same 2-rank checkpoint (3 steps) in one process: the optimizer shards re-sliced into one, the EMA read whole.
        string three = Path.Combine(resumed.Path, "ckpt", CheckpointLayout.FolderName(3));
        using var copy = new TempDirectory("bagel-shard-one-");
        CopyFolder(three, Path.Combine(copy.Path, "ckpt", CheckpointLayout.FolderName(3)));
        using var model = new TinyPackedModel(seed: 5, decoderLayers: layers);
        TrainingConfiguration configuration = DataParallelTrainingTests.Configuration(Path.Combine(copy.Path, "ckpt"), copy.Path, Steps);
        using var session = new TrainingSession(model, configuration, new TrainingSessionOptions { ProcessGroup = SingleProcessGroup.Instance, Sharding = mode });
        TrainingResume resume = session.Restore(TestContext.Current.CancellationToken);
        Assert.Equal(3, resume.StartStep);
        ShardedOptimizer one = session.ShardedOptimizer!;
        long n = one.Layout.TotalElements;
        var state = (TorchSharp.Modules.AdamW.State)session.Optimizer.state_dict().State[0];
        Assert.Equal(3, state.step);
        foreach (string moment in (string[])["exp_avg", "exp_avg_sq"])
        {
            using torch.Tensor expected = torch.cat([ReadShard(three, 0, moment), ReadShard(three, 1, moment)]).narrow(0, 0, n);
            using torch.Tensor actual = moment == "exp_avg" ? state.exp_avg.narrow(0, 0, n) : state.exp_avg_sq.narrow(0, 0, n);
            Assert.True(expected.Equals(actual), $"{moment}: the re-sliced state differs from the two saved shards.");
        }
        using (SafeTensorsReader ema = SafeTensorsReader.Open(Path.Combine(three, CheckpointLayout.EmaFileName)))
        using (SafeTensorsReader weights = SafeTensorsReader.Open(Path.Combine(three, CheckpointLayout.ModelFileName)))
        {
            foreach (FlatShardEntry entry in one.Layout.Entries)
            {
                using torch.Tensor saved = ema.ReadTensor(entry.Name), savedWeights = weights.ReadTensor(entry.Name);
                using torch.Tensor mine = one.Ema.Shard.narrow(0, entry.Offset, entry.Elements), master = one.Master.detach().narrow(0, entry.Offset, entry.Elements);
                Assert.True(saved.reshape(-1).Equals(mine), $"EMA {entry.Name} differs from the file.");
                Assert.True(savedWeights.reshape(-1).Equals(master), $"weights {entry.Name} differ from the file.");
            }
        }
        // And it trains on: one more step in this process, then a checkpoint of one shard file.
        using (var data = new ShardedData())
        {
            DataPipeline pipeline = await data.PipelineAsync(0, 1);
            await using var batches = pipeline.ReadAsync(null, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
            {
                Assert.True(await batches.MoveNextAsync());
                using var batch = batches.Current;
                model.Module.train();
                float loss = ForwardBackward(model, session, batch);
                session.Gradients.SynchronizeGradients();
                Assert.False(session.Stepper.Step(3, loss).Skipped);
            }
        }
        CheckpointInfo saved4 = session.Save(new TrainProgress(4), null, TestContext.Current.CancellationToken);
        Assert.Equal([ShardedStateFiles.OptimizerFileName(0, 1)], ShardedStateFiles.OptimizerFiles(saved4.Folder).Select(Path.GetFileName));
        using SafeTensorsReader written = SafeTensorsReader.Open(Path.Combine(saved4.Folder, CheckpointLayout.ModelFileName));
        foreach (FlatShardEntry entry in one.Layout.Entries)
        {
            using torch.Tensor file = written.ReadTensor(entry.Name), master = one.Master.detach().narrow(0, entry.Offset, entry.Elements);
            Assert.True(file.reshape(-1).Equals(master), $"{entry.Name} of the 1-process save differs from its master weights.");
        }
    }

    [Fact]
    public void ARankKilledDuringAShardedSaveLeavesThePreviousCheckpointWhichAutoResumeFinds()
    {
        MpiRun.SkipIfUnavailable();
        TempDirectory straight = OptimizerShardRun.Value;
        using var folder = new TempDirectory("bagel-shard-kill-");
        // save_every 2: the checkpoint of 2 steps is written; rank 1 kills itself after writing its shard of the 4-step save.
        var (result, _) = MpiRun.Run(typeof(ShardedTrainingTests), nameof(ChildTrains), 2, Variables(folder.Path, ShardingMode.OptimizerState, Steps, saveEvery: 2, killAtSave: 4), TimeSpan.FromMinutes(3));
        Assert.NotEqual(0, result.ExitCode);
        Assert.True(File.Exists(Path.Combine(folder.Path, "killed-rank1.txt")), $"Rank 1 was not killed:\n{result.Combined}");
        string ckpt = Path.Combine(folder.Path, "ckpt");
        Assert.Equal([CheckpointLayout.FolderName(2)], CheckpointCatalog.List(ckpt).Select(c => Path.GetFileName(c.Folder)));
        Assert.Contains(Directory.GetDirectories(ckpt), d => Path.GetFileName(d).StartsWith(CheckpointLayout.TemporaryPrefix, StringComparison.Ordinal));

        RunRanks(folder.Path, ShardingMode.OptimizerState, Steps);
        Assert.Equal("4 False", File.ReadAllText(Path.Combine(folder.Path, "result-rank0.txt")));
        Assert.Equal("2", File.ReadAllText(Path.Combine(folder.Path, "start-rank0.txt")));
        string final = CheckpointLayout.FolderName(Steps);
        foreach (string file in (string[])[CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName])
            Assert.True(File.ReadAllBytes(Path.Combine(straight.Path, "ckpt", final, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(ckpt, final, file))),
                $"{file} after the kill and auto-resume differs from the uninterrupted run's.");
    }

    private const string PresetVariable = "BAGEL_TEST_SHARD_PRESET_OUT";

    [Fact]
    public void TheTinyPresetOnTwoRanksShardsItsDecoderLayersByDefaultAndRendersItsValidationImages()
    {
        MpiRun.SkipIfUnavailable();
        using var folder = new TempDirectory("bagel-shard-preset-");
        var (result, _) = MpiRun.Run(typeof(ShardedTrainingTests), nameof(ChildRunsTheTinyPreset), 2, new Dictionary<string, string> { [PresetVariable] = folder.Path }, TimeSpan.FromMinutes(4));
        Assert.True(result.ExitCode == 0, $"mpirun failed ({result.ExitCode}):\n{result.Combined}");
        // The reference's default strategy with num_shard 8 on 2 ranks: one shard group, parameters sharded per layer.
        Assert.Contains("sharding_strategy HYBRID_SHARD with num_shard 8 >= world size 2: one shard group, as FULL_SHARD", result.Combined, StringComparison.Ordinal);
        // Validation images need every rank (each layer's gather is a collective); rank 0 wrote them, from the EMA shards.
        Assert.Contains("answer(s) with the EMA weights", result.Combined, StringComparison.Ordinal);
        foreach (int step in (int[])[2, 4])
            Assert.True(File.Exists(Path.Combine(folder.Path, "validation", $"step_{step:D7}.png")), $"no validation grid of step {step}:\n{result.Combined}");
        string last = Path.Combine(folder.Path, "checkpoints", CheckpointLayout.FolderName(4));
        Assert.Equal([ShardedStateFiles.OptimizerFileName(0, 2), ShardedStateFiles.OptimizerFileName(1, 2)], ShardedStateFiles.OptimizerFiles(last).Select(Path.GetFileName));
    }

    [Fact]
    public async Task ChildRunsTheTinyPreset()
    {
        string? folder = Environment.GetEnvironmentVariable(PresetVariable);
        if (folder is null) Assert.Skip("Runs only under mpirun, from the sharded-training tests.");
        torch.set_num_threads(1);
        using var group = new MpiProcessGroup(TimeSpan.FromSeconds(120));
        var options = new Bagel.Training.Recipes.TinyPresetOptions { ResultsDir = folder, TotalSteps = 4, SaveEvery = 2, ProcessGroup = group };
        int exit = await Bagel.Training.Recipes.TinyPreset.RunAsync(options, Console.Out, Console.Error, TestContext.Current.CancellationToken);
        Assert.Equal(0, exit);
    }

    [Fact]
    public async Task ChildTrains()
    {
        string? folder = Environment.GetEnvironmentVariable(OutVariable);
        if (folder is null) Assert.Skip("Runs only under mpirun, from the sharded-training tests.");
        int Setting(string name) => int.Parse(Environment.GetEnvironmentVariable(name) ?? "0", CultureInfo.InvariantCulture);
        int shardRanks = Setting("BAGEL_TEST_SHARD_RANKS");
        int steps = Setting("BAGEL_TEST_SHARD_STEPS"), stopAfter = Setting("BAGEL_TEST_SHARD_STOP_AFTER"), saveEvery = Setting("BAGEL_TEST_SHARD_SAVE_EVERY"), killAtSave = Setting("BAGEL_TEST_SHARD_KILL_AT_SAVE");
        var mode = (ShardingMode)Setting("BAGEL_TEST_SHARD_MODE");
        int layers = Setting("BAGEL_TEST_SHARD_LAYERS");
        torch.set_num_threads(1);
        using var group = new MpiProcessGroup(TimeSpan.FromSeconds(60));
        int rank = group.Rank;
        if (killAtSave > 0)
        {
            ShardedCheckpoint.ShardWrittenHook = (step, r) =>
            {
                if (r != 1 || step != killAtSave) return;
                File.WriteAllText(Path.Combine(folder, "killed-rank1.txt"), "killed");
                Process.GetCurrentProcess().Kill(); // SIGKILL in the middle of the save
            };
        }
        using var data = new ShardedData(t2iFiles: Math.Max(2, group.WorldSize));
        DataPipeline pipeline = await data.PipelineAsync(rank, group.WorldSize);
        using var model = new TinyPackedModel(seed: 1 + 1000 * rank, decoderLayers: layers);
        using var stop = new CancellationTokenSource();
        TrainingConfiguration configuration = DataParallelTrainingTests.Configuration(Path.Combine(folder, "ckpt"), data.Root, steps);
        if (saveEvery > 0) configuration.Training.SaveEvery = saveEvery;
        long? start = null;
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(pipeline).UseOptions(configuration)
            .UseProcessGroup(group).UseSharding(mode, shardRanks > 0 ? shardRanks : null).UseDefaultMetricSinks(false)
            .OnStep(report =>
            {
                start ??= report.Step;
                if (rank == 1 && report.Step + 1 == stopAfter) stop.Cancel();
            })
            .Build();
        TrainingRunResult result = await trainer.RunAsync(stop.Token);
        File.WriteAllText(Path.Combine(folder, $"result-rank{rank}.txt"), $"{result.CompletedSteps} {result.Cancelled}");
        File.WriteAllText(Path.Combine(folder, $"start-rank{rank}.txt"), (start ?? -1).ToString(CultureInfo.InvariantCulture));
        // The state this rank allocated: AdamW moments and EMA elements.
        long elements = mode == ShardingMode.None
            ? trainer.Optimizer.parameters().Sum(p => 2 * p.numel()) + trainer.EmaModule.parameters().Sum(p => p.numel())
            : 3 * trainer.Optimizer.parameters().Single().numel();
        File.WriteAllText(Path.Combine(folder, $"state-rank{rank}.txt"), elements.ToString(CultureInfo.InvariantCulture));
        if (trainer.ShardedCheckpoint is { } checkpoint && rank == 0)
            File.WriteAllText(Path.Combine(folder, "peak-rank0.txt"), checkpoint.PeakGatheredBytes.ToString(CultureInfo.InvariantCulture));
        if (trainer.ShardedOptimizer is { Mode: ShardingMode.Parameters } full)
        {
            // Measured: the most bytes of gathered decoder-layer weights held at once, the largest layer's bytes, and the
            // decoder-layer elements this rank's module holds now (between steps: none).
            long held = model.Network.decoder!.Layers.Sum(l => l.parameters().Sum(p => p.numel()));
            File.WriteAllText(Path.Combine(folder, $"layers-rank{rank}.txt"), string.Create(CultureInfo.InvariantCulture, $"{full.PeakGatheredLayerBytes} {full.LargestLayerBytes} {held}"));
        }
    }

    private static long[] StateElements(string folder, int ranks = 2) =>
        [.. Enumerable.Range(0, ranks).Select(r => long.Parse(File.ReadAllText(Path.Combine(folder, $"state-rank{r}.txt")), CultureInfo.InvariantCulture))];

    private static torch.Tensor ReadShard(string folder, int rank, string name)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(Path.Combine(folder, ShardedStateFiles.OptimizerFileName(rank, 2)));
        return reader.ReadTensor(name);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    private static async Task<(Dictionary<string, torch.Tensor> Weights, Dictionary<string, torch.Tensor> Ema)> TrainInProcess(ShardedData data, ShardingMode mode, string name,
        int layers = 0, int microBatches = 1, Action<TrainingSession, TinyPackedModel, PackedBatch>? check = null)
    {
        DataPipeline pipeline = await data.PipelineAsync(0, 1);
        using var model = new TinyPackedModel(seed: 1, decoderLayers: layers);
        TrainingConfiguration configuration = DataParallelTrainingTests.Configuration(Path.Combine(data.Root, name), data.Root, Steps);
        using var session = new TrainingSession(model, configuration, new TrainingSessionOptions { ProcessGroup = SingleProcessGroup.Instance, Sharding = mode });
        session.Restore(TestContext.Current.CancellationToken);
        if (session.ShardedOptimizer is { } chunked) chunked.ChunkElements = 37; // many chunks, boundaries inside tensors
        model.Module.train();
        await using var batches = pipeline.ReadAsync(null, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        for (int step = 0; step < Steps; step++)
        {
            double total = 0;
            for (int micro = 0; micro < microBatches; micro++)
            {
                Assert.True(await batches.MoveNextAsync());
                using var batch = batches.Current;
                total += ForwardBackward(model, session, batch);
            }
            using (torch.NewDisposeScope())
            {
                session.Gradients.SynchronizeGradients();
                session.Stepper.Step(step, total);
            }
        }
        if (check is not null)
        {
            Assert.True(await batches.MoveNextAsync()); // the next batch of the stream, for the check's own forwards
            using var next = batches.Current;
            check(session, model, next);
        }
        Dictionary<string, torch.Tensor> weights, ema;
        if (session.ShardedOptimizer is { } sharded)
        {
            // One process: the shard is the whole flat state (a parameter-sharded module holds no decoder layer now).
            weights = sharded.Layout.Entries.ToDictionary(e => e.Name, e => sharded.Master.detach().narrow(0, e.Offset, e.Elements).view(e.Shape).clone().DetachFromDisposeScope());
            ema = sharded.Layout.Entries.ToDictionary(e => e.Name, e => sharded.Ema.Shard.narrow(0, e.Offset, e.Elements).view(e.Shape).clone().DetachFromDisposeScope());
        }
        else
        {
            weights = model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
            ema = session.Ema.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
        }
        return (weights, ema);
    }

    private static void AssertSameFileTensors(string expectedFile, string actualFile, double tolerance)
    {
        using SafeTensorsReader expected = SafeTensorsReader.Open(expectedFile), actual = SafeTensorsReader.Open(actualFile);
        Assert.Equal(expected.Tensors.Select(t => t.Name), actual.Tensors.Select(t => t.Name));
        foreach (SafeTensorInfo info in expected.Tensors)
        {
            using torch.Tensor e = expected.ReadTensor(info.Name), a = actual.ReadTensor(info.Name);
            AssertClose(e, a, $"{Path.GetFileName(actualFile)} {info.Name}", tolerance);
        }
    }

    private static void AssertClose(torch.Tensor expected, torch.Tensor actual, string what, double tolerance = 1e-6)
    {
        Assert.Equal(expected.shape, actual.shape);
        using torch.Tensor difference = (actual.to(torch.float64) - expected.to(torch.float64)).abs().max();
        using torch.Tensor scale = expected.to(torch.float64).abs().max();
        double relative = difference.item<double>() / Math.Max(scale.item<double>(), 1e-12);
        Assert.True(relative <= tolerance, $"{what}: differs by {relative:E2} relative (max |difference| / max |value|).");
    }

    private static Dictionary<string, string> Variables(string folder, ShardingMode mode, int steps, int stopAfter = 0, int saveEvery = 0, int killAtSave = 0, int shardRanks = 0, int layers = 0) => new()
    {
        ["BAGEL_TEST_SHARD_LAYERS"] = layers.ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_SHARD_RANKS"] = shardRanks.ToString(CultureInfo.InvariantCulture),
        [OutVariable] = folder,
        ["BAGEL_TEST_SHARD_MODE"] = ((int)mode).ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_SHARD_STEPS"] = steps.ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_SHARD_STOP_AFTER"] = stopAfter.ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_SHARD_SAVE_EVERY"] = saveEvery.ToString(CultureInfo.InvariantCulture),
        ["BAGEL_TEST_SHARD_KILL_AT_SAVE"] = killAtSave.ToString(CultureInfo.InvariantCulture),
    };

    private static void RunRanks(string folder, ShardingMode mode, int steps, int stopAfter = 0, int ranks = 2, int shardRanks = 0, int layers = 0)
    {
        var (result, _) = MpiRun.Run(typeof(ShardedTrainingTests), nameof(ChildTrains), ranks, Variables(folder, mode, steps, stopAfter, shardRanks: shardRanks, layers: layers), TimeSpan.FromMinutes(3));
        Assert.True(result.ExitCode == 0, $"mpirun failed ({result.ExitCode}):\n{result.Combined}");
    }
}

/// <summary>Optimizer shards written by one world size and re-sliced for another, checked rank by rank in one process.</summary>
public sealed class ShardedOptimizerFileTests
{
    [Fact]
    public async Task OptimizerShardsOfOneRankAreReSlicedForThreeRanksAndThePaddingStaysZero()
    {
        using var data = new ShardedData();
        DataPipeline pipeline = await data.PipelineAsync(0, 1);
        using var model = new TinyPackedModel(seed: 3);
        TrainingConfiguration configuration = DataParallelTrainingTests.Configuration(Path.Combine(data.Root, "one"), data.Root, 2);
        using var session = new TrainingSession(model, configuration, new TrainingSessionOptions { ProcessGroup = SingleProcessGroup.Instance, Sharding = ShardingMode.OptimizerState });
        session.Restore(TestContext.Current.CancellationToken);
        await using (var batches = pipeline.ReadAsync(null, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken))
        {
            Assert.True(await batches.MoveNextAsync());
            using var batch = batches.Current;
            float loss = ShardedTrainingTests.ForwardBackward(model, session, batch);
            session.Gradients.SynchronizeGradients();
            session.Stepper.Step(0, loss);
        }
        CheckpointInfo saved = session.Save(new TrainProgress(1), null, TestContext.Current.CancellationToken);
        var one = (TorchSharp.Modules.AdamW.State)session.Optimizer.state_dict().State[0];
        long n = session.ShardedOptimizer!.Layout.TotalElements;

        for (int rank = 0; rank < 3; rank++)
        {
            using var twin = new TinyPackedModel(seed: 3);
            using var group = new FixedRankGroup(rank, 3);
            using var sharded = new ShardedOptimizer(group, twin.Module, ShardingMode.OptimizerState, new Bagel.Training.Optimization.AdamWOptions(), 0.9);
            ShardedStateFiles.LoadOptimizer(sharded, saved.Folder);
            var state = (TorchSharp.Modules.AdamW.State)sharded.Optimizer.state_dict().State[0];
            Assert.Equal(one.step, state.step);
            long s = sharded.Layout.ShardElements, start = rank * s, owned = sharded.Layout.OwnedElements(rank);
            Assert.Equal((n + 2) / 3, s);
            using torch.Tensor expected = one.exp_avg_sq.narrow(0, start, owned), actual = state.exp_avg_sq.narrow(0, 0, owned);
            Assert.True(expected.Equals(actual), $"rank {rank} of 3: exp_avg_sq differs from the 1-rank state's slice.");
            using torch.Tensor expectedAvg = one.exp_avg.narrow(0, start, owned), actualAvg = state.exp_avg.narrow(0, 0, owned);
            Assert.True(expectedAvg.Equals(actualAvg), $"rank {rank} of 3: exp_avg differs from the 1-rank state's slice.");
            if (owned < s)
            {
                using torch.Tensor padding = state.exp_avg.narrow(0, owned, s - owned);
                Assert.Equal(0, padding.abs().sum().item<float>());
            }
        }
    }

    /// <summary>A group that only knows its rank and size (loading a shard needs no collective).</summary>
    internal sealed class FixedRankGroup(int rank, int worldSize) : IProcessGroup
    {
        public int Rank => rank;
        public int WorldSize => worldSize;
        public int LocalRank => rank;
        public int LocalWorldSize => worldSize;
        public string Backend => "test";
        public TimeSpan Timeout => TimeSpan.FromSeconds(1);
        public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum) => throw new NotSupportedException();
        public void ReduceScatter(torch.Tensor input, torch.Tensor output, ReduceOp op = ReduceOp.Sum) => throw new NotSupportedException();
        public void AllGather(torch.Tensor input, torch.Tensor output) => throw new NotSupportedException();
        public void Broadcast(torch.Tensor tensor, int root = 0) => throw new NotSupportedException();
        public void Barrier() => throw new NotSupportedException();
        public void Dispose()
        {
        }
    }
}
