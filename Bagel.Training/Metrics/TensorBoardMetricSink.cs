using Bagel.Core.Metrics;
using TorchSharp;

namespace Bagel.Training.Metrics;

/// <summary>
/// Writes metrics as TensorBoard scalars through TorchSharp's own <c>torch.utils.tensorboard.SummaryWriter</c>, one
/// scalar per metric under the reference's W&amp;B name (so <c>wandb sync --sync-tensorboard</c> shows the same keys).
/// Limits inherited from TorchSharp 0.107's writer, acceptable for scalars: wall times are whole seconds (its
/// <c>walltime</c> parameter is a <c>long</c>), steps must fit an <c>int</c>, values are stored as float32 (as every
/// TensorBoard scalar), the file-version event carries <c>DateTime.Now.Ticks</c> as its wall time, and each event opens
/// and closes the file (fine at <c>log_every</c> rates).
/// </summary>
public sealed class TensorBoardMetricSink : IMetricSink
{
    private readonly TorchSharp.Modules.SummaryWriter _writer;

    /// <summary>Creates an event file in <paramref name="logDir"/> (created if missing).</summary>
    public TensorBoardMetricSink(string logDir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(logDir);
        _writer = torch.utils.tensorboard.SummaryWriter(Path.GetFullPath(logDir));
    }

    /// <summary>The folder holding the event file.</summary>
    public string LogDir => _writer.LogDir;

    /// <inheritdoc />
    public ValueTask WriteAsync(StepMetrics metrics, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        if (metrics.Step is < 0 or > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(metrics), metrics.Step, "TensorBoard steps must fit in a 32-bit int (TorchSharp's SummaryWriter).");
        long wallTime = metrics.Timestamp.ToUnixTimeSeconds();
        foreach ((string key, double value) in metrics.Values)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _writer.add_scalar(key, (float)value, (int)metrics.Step, wallTime);
        }
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask; // Each event is flushed by the writer.

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask; // The writer holds no open handle between events.
}
