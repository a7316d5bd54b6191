using System.Runtime.CompilerServices;
using Bagel.Core.Devices;
using Bagel.Core.Metrics;
using Bagel.Tests.Core.StateDicts;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using TorchSharp;

namespace Bagel.Tests.Training.Precision;

/// <summary>
/// What a CUDA run needs from the step and that is checkable without a GPU: the host reads per step (counted through
/// the loop's seam), the absent-CUDA-runtime path of the GPU memory figures, and that the CPU logs no memory figures.
/// The CUDA paths themselves (pinned non-blocking copy, cudaMemGetInfo) cannot run here.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class CudaReadyStepTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class ListSink : IMetricSink
    {
        public List<StepMetrics> Records { get; } = [];

        public ValueTask WriteAsync(StepMetrics metrics, CancellationToken cancellationToken = default)
        {
            Records.Add(metrics);
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask DiscardFromStepAsync(long step, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)] // gradient accumulation: still one read of the losses per step, none per micro-batch
    public async Task EachStepReadsTheDeviceTwiceWhateverTheMicroBatchesAndLoggingReadsNothingMore(int microBatches)
    {
        const int steps = 4;
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        var configuration = fixture.Configuration("ckpt", totalSteps: steps);
        configuration.Training.GradientAccumulationSteps = microBatches;
        configuration.Training.LogEvery = 2; // steps 0 and 2 log
        var sink = new ListSink();
        using var loggers = new CollectingLoggerProvider();
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration)
            .UseLogger(loggers).AddMetricSink(sink).Build();
        var reads = new StrongBox<long>();
        HostSync.Counter.Value = reads;
        try
        {
            await trainer.RunAsync(Ct);
        }
        finally
        {
            HostSync.Counter.Value = null;
        }
        // The step's [total, mse, ce] in one copy, and the clipped gradient norm: both for the NaN guard.
        Assert.Equal(2L * steps, reads.Value);
        Assert.Equal([0L, 2L], sink.Records.Select(r => r.Step));

        // On the CPU no GPU memory figures: no log text, no metric keys, mem_cache stays 0.
        Assert.DoesNotContain(loggers.Messages, m => m.Contains("GPU Mem", StringComparison.Ordinal));
        Assert.All(sink.Records, r => Assert.False(r.Values.ContainsKey(BagelMetricNames.GpuMemUsedMb)));
        Assert.All(sink.Records, r => Assert.Equal(0, r.Values[ReferenceMetricNames.MemCache]));
    }

    [Fact]
    public void OnTheCpuThereIsNoMemoryMonitorAndNothingIsLogged()
    {
        var logger = new ListLogger();
        Assert.Null(DeviceMemoryMonitor.Create(torch.CPU, logger));
        Assert.Empty(logger.Entries);
    }

    [Fact]
    public void WithoutTheCudaRuntimeTheMonitorWarnsOnceNamingWhatItTried()
    {
        Assert.False(CudaMemoryInfo.TryLoad(["libbagel-no-such-cudart.so.99"], out CudaMemoryInfo? info, out string? problem));
        Assert.Null(info);
        Assert.Contains("libbagel-no-such-cudart.so.99", problem, StringComparison.Ordinal);
        Assert.Contains("cudaMemGetInfo", problem, StringComparison.Ordinal);

        var logger = new ListLogger();
        DeviceMemoryMonitor? monitor = DeviceMemoryMonitor.Create(new torch.Device(DeviceType.CUDA, 0), logger, () => (null, problem));
        Assert.Null(monitor);
        (Microsoft.Extensions.Logging.LogLevel level, string message) = Assert.Single(logger.Entries);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, level);
        Assert.StartsWith("GPU memory is not logged", message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheMemoryPartOfTheLogLineNamesUsedPeakAndTotal()
    {
        var reading = new DeviceMemoryReading(UsedMiB: 1234.4, PeakUsedMiB: 2345.6, TotalMiB: 81559, PeakReservedMiB: 1800);
        Assert.Equal("GPU Mem: used 1234 MB, peak 2346 MB of 81559 MB, ", DeviceMemoryMonitor.FormatForLogLine(reading));
    }

    [Fact]
    public void OnTheCpuTheTrainingCopyOfABatchIsAPlainCopy()
    {
        using var examples = new Bagel.Tests.Core.Batching.PackedBatchExamples();
        using var batch = examples.ValidBuilder().Build();
        using var copy = batch.ToDeviceForTraining(torch.CPU);
        Assert.NotSame(batch, copy);
        Assert.True(copy.PackedTextIds.eq(batch.PackedTextIds).all().item<bool>());
        Assert.True(copy.Vae!.PaddedImages.eq(batch.Vae!.PaddedImages).all().item<bool>());
        Assert.Equal(batch.Vae.PixelsPerLatentToken, copy.Vae.PixelsPerLatentToken);
    }
}
