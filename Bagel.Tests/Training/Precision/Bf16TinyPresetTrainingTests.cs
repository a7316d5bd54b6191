using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Precision;

/// <summary>
/// The tiny preset (what Bagel.Train runs without arguments) in bf16 mixed precision against the same preset in fp32:
/// it learns to the same thresholds, its late losses stay within 15 % of fp32's, and a bf16 run stopped half-way and
/// resumed matches the straight bf16 run bit for bit (losses, gradient norms, and the model, EMA, optimizer and RNG files).
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class Bf16TinyPresetTrainingTests(ITestOutputHelper output)
{
    private const int Steps = 40, Half = 20;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<List<TrainingStepReport>> RunAsync(string results, string precision, int totalSteps = Steps, int? stopAfter = null)
    {
        var steps = new List<TrainingStepReport>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var options = new TinyPresetOptions
        {
            ResultsDir = results, TotalSteps = totalSteps, SaveEvery = 1000, KeepLastCheckpoints = 1, Precision = precision,
            OnStep = r => { steps.Add(r); if (r.Step + 1 == stopAfter) stop.Cancel(); },
        };
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = await TinyPreset.RunAsync(options, stdout, stderr, stop.Token);
        Assert.True(exit == (stopAfter is null ? TrainCommand.ExitSuccess : TrainCommand.ExitInterrupted), stderr.ToString());
        return steps;
    }

    private static double Mean(IEnumerable<double> values) => values.Average();

    /// <summary>
    /// One test, so that the bf16 straight run serves both checks (the tiny preset trains at about 1 step/s here).
    /// Thresholds over 40 steps: CE last-5 mean at most 0.5× the first-5 (both precisions reach about 0.18×); MSE
    /// last-5 at most 0.95× the first-5 — fp32 itself reaches only about 0.87× in 40 steps, the 0.7× of the
    /// 300-step preset run is measured by <c>Bagel.Train --precision bf16|fp32</c> (docs/precision.md).
    /// </summary>
    [Fact]
    public async Task Bf16LearnsLikeFp32AndFortyStepsStraightEqualTwentyThenResumeThenTwentyBitForBit()
    {
        using var folder = new TempDirectory();
        string straight = Path.Combine(folder.Path, "bf16"), resumed = Path.Combine(folder.Path, "resumed");
        List<TrainingStepReport> fp32 = await RunAsync(Path.Combine(folder.Path, "fp32"), "fp32");
        List<TrainingStepReport> bf16 = await RunAsync(straight, "bf16");

        var ratios = new Dictionary<string, (double Mse, double Ce)>();
        foreach ((string name, List<TrainingStepReport> run) in new[] { ("fp32", fp32), ("bf16", bf16) })
        {
            Assert.Equal(Steps, run.Count);
            Assert.All(run, s => Assert.True(double.IsFinite(s.TotalLoss) && !s.Skipped, $"{name} step {s.Step}: loss {s.TotalLoss}"));
            double mseFirst = Mean(run.Take(5).Select(s => s.Mse)), mseLast = Mean(run.TakeLast(5).Select(s => s.Mse));
            double ceFirst = Mean(run.Take(5).Select(s => s.Ce)), ceLast = Mean(run.TakeLast(5).Select(s => s.Ce));
            ratios[name] = (mseLast / mseFirst, ceLast / ceFirst);
            output.WriteLine($"{name}: mse first-5 {mseFirst:F4} last-5 {mseLast:F4} ({mseLast / mseFirst:F3}x); ce first-5 {ceFirst:F4} last-5 {ceLast:F4} ({ceLast / ceFirst:F3}x)");
        }
        double fp32Late = Mean(fp32.TakeLast(20).Select(s => s.TotalLoss)), bf16Late = Mean(bf16.TakeLast(20).Select(s => s.TotalLoss));
        output.WriteLine($"mean of the last 20 losses: fp32 {fp32Late:F4}, bf16 {bf16Late:F4} ({Math.Abs(bf16Late - fp32Late) / fp32Late:P1} apart)");
        foreach ((string name, (double mse, double ce)) in ratios)
        {
            Assert.True(ce <= 0.5, $"{name}: ce last-5/first-5 {ce:F3}");
            Assert.True(mse <= 0.95, $"{name}: mse last-5/first-5 {mse:F3}");
        }
        Assert.InRange(Math.Abs(bf16Late - fp32Late) / fp32Late, 0, 0.15);
        Assert.NotEqual(fp32.Select(s => s.TotalLoss), bf16.Select(s => s.TotalLoss)); // bf16 really computed in bf16

        // 20 steps, a stop (final checkpoint), then a rerun that resumes: the same 40 steps as the straight bf16 run.
        List<TrainingStepReport> head = await RunAsync(resumed, "bf16", stopAfter: Half);
        List<TrainingStepReport> tail = await RunAsync(resumed, "bf16");
        static (long, double, double, double, double, double) Figures(TrainingStepReport s) => (s.Step, s.Mse, s.Ce, s.TotalLoss, s.GradNorm, s.LearningRate);
        Assert.Equal(Half, head.Count);
        Assert.Equal(bf16.Take(Half).Select(Figures), head.Select(Figures));
        Assert.Equal(bf16.Skip(Half).Select(Figures), tail.Select(Figures));
        string last = CheckpointLayout.FolderName(Steps);
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName, CheckpointLayout.RngStateFileName })
        {
            Assert.True(File.ReadAllBytes(Path.Combine(straight, "checkpoints", last, file))
                .SequenceEqual(File.ReadAllBytes(Path.Combine(resumed, "checkpoints", last, file))), $"{file} differs");
        }
    }
}
