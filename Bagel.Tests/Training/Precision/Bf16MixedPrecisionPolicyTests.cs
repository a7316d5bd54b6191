using Bagel.Core.Devices;
using Bagel.Core.SafeTensors;
using Bagel.CustomLoop;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using Bagel.Training.Precision;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Tests.Training.Precision;

/// <summary>The bf16 mixed-precision policy: float32 masters for the optimizer and checkpoints, a bf16 working copy for
/// the passes, float32 gradient accumulation, and the switch in the builder and the flags.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class Bf16MixedPrecisionPolicyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<TinyRun> NewRunAsync(TempDirectory root, int totalSteps = 2) =>
        TinyRun.CreateAsync(Path.Combine(root.Path, "data"), Path.Combine(root.Path, "ckpt"), totalSteps, saveEvery: 1000, NullLogger.Instance, Ct);

    [Fact]
    public async Task UseComputeBf16TrainsAWorkingCopyAndKeepsFloat32MastersOptimizerStateAndCheckpoints()
    {
        using var root = new TempDirectory();
        using TinyRun run = await NewRunAsync(root);
        using Trainer trainer = new TrainerBuilder().UseModel(run.Model).UseData(run.Data).UseOptions(run.Configuration)
            .UseLogger(NullLoggerFactory.Instance).UseDefaultMetricSinks(false)
            .UseCompute(new ComputeOptions { DType = "bf16" }).Build();
        Assert.Equal(TrainingPrecision.Bf16Mixed, trainer.Precision.Precision);
        var policy = Assert.IsType<Bf16MixedPrecisionPolicy>(trainer.Precision);
        Assert.All(policy.WorkingModule.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.Same(run.Model.Module, policy.MasterModel.Module);
        TrainingRunResult result = await trainer.RunAsync(Ct);

        Assert.All(run.Model.Module.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(trainer.Optimizer.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(trainer.EmaModule.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
        {
            using SafeTensorsReader reader = SafeTensorsReader.Open(Path.Combine(result.LastCheckpoint, file));
            Assert.All(reader.Tensors, t => Assert.True(t.DType == SafeTensorDType.F32 || t.DType == SafeTensorDType.I64, $"{file}: {t.Name} is {t.DType}"));
        }
        // The working copy holds the bf16 cast of the masters once it is brought up to date.
        policy.BeforeForward();
        foreach (((string name, var master), var working) in run.Model.Module.named_parameters().Zip(policy.WorkingModule.parameters()))
            Assert.True(master.to(ScalarType.BFloat16).eq(working).all().item<bool>(), name);
    }

    [Fact]
    public async Task AfterBackwardAddsTheBf16GradientsIntoFloat32MasterGradientsAndFreesThem()
    {
        using var root = new TempDirectory();
        using TinyRun run = await NewRunAsync(root);
        using var policy = new Bf16MixedPrecisionPolicy(run.Model);
        Parameter master = run.Model.Module.parameters().First(p => p.requires_grad);
        Parameter working = policy.WorkingModule.parameters().First(p => p.requires_grad);
        policy.BeforeForward();
        using (torch.no_grad()) working.grad = torch.full_like(working, 0.5);
        policy.AfterBackward();
        Assert.Null(working.grad);
        using (torch.no_grad()) working.grad = torch.full_like(working, 0.25);
        policy.AfterBackward();
        using Tensor masterGrad = master.grad!;
        Assert.Equal(ScalarType.Float32, masterGrad.dtype);
        Assert.True(masterGrad.eq(0.75).all().item<bool>());
    }

    [Fact]
    public async Task ABf16MasterModelIsRefusedWithTheParameterName()
    {
        using var root = new TempDirectory();
        using TinyRun run = await NewRunAsync(root);
        run.Model.Module.to(ScalarType.BFloat16);
        var error = Assert.Throws<ArgumentException>(() => new Bf16MixedPrecisionPolicy(run.Model));
        Assert.Contains("float32 master weights", error.Message, StringComparison.Ordinal);
        Assert.Contains("is BFloat16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AModelWithoutAWorkingCopySaysSo()
    {
        using var model = new TinyPackedModel(seed: 3);
        var error = Assert.Throws<NotSupportedException>(() => new Bf16MixedPrecisionPolicy(model));
        Assert.Contains("ForWorkingCopy", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ThePrecisionFlagResolvesAutoByDeviceAndRejectsOtherValues()
    {
        Assert.True(TrainingPrecisionNames.TryParse("auto", torch.CPU, out TrainingPrecision cpu));
        Assert.Equal(TrainingPrecision.Fp32, cpu);
        Assert.True(TrainingPrecisionNames.TryParse("auto", new torch.Device(DeviceType.CUDA, 0), out TrainingPrecision cuda));
        Assert.Equal(TrainingPrecision.Bf16Mixed, cuda);
        Assert.True(TrainingPrecisionNames.TryParse("BF16", torch.CPU, out TrainingPrecision bf16));
        Assert.Equal(TrainingPrecision.Bf16Mixed, bf16);
        Assert.True(TrainingPrecisionNames.TryParse("fp32", new torch.Device(DeviceType.CUDA, 0), out TrainingPrecision fp32));
        Assert.Equal(TrainingPrecision.Fp32, fp32);

        var configuration = TrainingConfiguration.Defaults();
        configuration.Training.Precision = "fp16";
        var error = Assert.Throws<InvalidTrainingOptionsException>(() => configuration.ValidateOrThrow());
        Assert.Contains("'precision' 'fp16'", string.Join("\n", error.Failures), StringComparison.Ordinal);
        Assert.Contains("--precision", ReferenceFlagHelp.Format(), StringComparison.Ordinal);
    }
}
