using Bagel.Core.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Bagel.Training.Metrics;

/// <summary>
/// Writes metrics as TensorBoard scalars through TorchSharp's own <c>torch.utils.tensorboard.SummaryWriter</c>, one
/// scalar per metric under the reference's W&amp;B name (so <c>wandb sync --sync-tensorboard</c> shows the same keys).
/// Limits inherited from TorchSharp 0.107's writer, acceptable for scalars: wall times are whole seconds (its
/// <c>walltime</c> parameter is a <c>long</c>), steps must fit an <c>int</c>, values are stored as float32 (as every
/// TensorBoard scalar), the file-version event carries <c>DateTime.Now.Ticks</c> as its wall time, and each event opens
/// and closes the file (fine at <c>log_every</c> rates). TensorBoard files are append-only and a new writer starts a new
/// file, so on resume <see cref="DiscardFromStepAsync"/> (called by the trainer) rewrites the folder's event files
/// without the events of the steps the run trains again: TensorBoard then shows each step once.
/// </summary>
/// <remarks>Images (<see cref="IImageMetricSink"/>) are appended to the same event file as hand-written image
/// summaries (TensorBoard's Images tab).</remarks>
public sealed class TensorBoardMetricSink : IMetricSink, IImageMetricSink
{
    private readonly TorchSharp.Modules.SummaryWriter _writer;
    private readonly ILogger _logger;
    private readonly string? _eventFile;

    /// <summary>Creates an event file in <paramref name="logDir"/> (created if missing).</summary>
    /// <param name="logDir">The folder.</param>
    /// <param name="logger">Where the resume rewrite reports what it dropped (default: nowhere).</param>
    public TensorBoardMetricSink(string logDir, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(logDir);
        string folder = Path.GetFullPath(logDir);
        HashSet<string> before = Directory.Exists(folder)
            ? [.. Directory.EnumerateFiles(folder, TensorBoardEventFiles.FileNamePattern)]
            : [];
        _writer = torch.utils.tensorboard.SummaryWriter(folder);
        // The writer creates its event file at once; images are appended to that file, so TensorBoard reads one stream.
        _eventFile = Directory.EnumerateFiles(folder, TensorBoardEventFiles.FileNamePattern).Where(f => !before.Contains(f))
            .OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        _logger = logger ?? NullLogger.Instance;
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

    /// <summary>The event file this sink writes to (scalars and images), or null when it could not be told apart.</summary>
    public string? EventFile => _eventFile;

    /// <inheritdoc />
    public ValueTask WriteImageAsync(StepImage image, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        cancellationToken.ThrowIfCancellationRequested();
        string file = _eventFile ?? throw new InvalidOperationException($"The TensorBoard event file of {LogDir} could not be identified; images are not written.");
        double wallTime = image.Timestamp.ToUnixTimeMilliseconds() / 1000.0;
        TensorBoardEventFiles.AppendRecord(file, TensorBoardEventFiles.ImageEvent(wallTime, image.Step, image.Tag, image.Height, image.Width, colorspace: 3, image.Png));
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask; // Each event is flushed by the writer.

    /// <summary>
    /// Rewrites every event file of <see cref="LogDir"/> (atomically, one by one) without the events of step
    /// <paramref name="step"/> or later and without a half-written last record; the file-version records stay.
    /// </summary>
    /// <param name="step">The run's first step.</param>
    /// <param name="cancellationToken">Checked between files.</param>
    /// <returns>A completed task.</returns>
    public ValueTask DiscardFromStepAsync(long step, CancellationToken cancellationToken = default)
    {
        TensorBoardEventFiles.DiscardFromStep(LogDir, step, _logger, cancellationToken);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask; // The writer holds no open handle between events.
}
