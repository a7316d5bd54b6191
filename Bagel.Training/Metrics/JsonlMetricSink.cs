using System.Text.Json;
using Bagel.Core.Metrics;
using Bagel.Training.Checkpoints;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Training.Metrics;

/// <summary>
/// Writes one JSON object per logged step to a file: <c>{"step":123,"time":"2026-...Z","mse":0.4,...}</c>, metric keys
/// under the reference's W&amp;B names. Each line goes to the file whole, in one write, as soon as it is made, so a
/// killed run loses no logged step and leaves at most one half-written last line. Appends, so a resumed run continues
/// the same file: <see cref="DiscardFromStepAsync"/> (called by the trainer before its first step) first rewrites the
/// file atomically without the lines of the steps it trains again and without damaged lines. Non-finite values are
/// written as the strings <c>"NaN"</c>, <c>"Infinity"</c> and <c>"-Infinity"</c>.
/// </summary>
public sealed class JsonlMetricSink : IMetricSink
{
    /// <summary>The reference's results folder holds it under this name by default.</summary>
    public const string DefaultFileName = "metrics.jsonl";

    private readonly ILogger _logger;
    private FileStream _stream;

    /// <summary>Opens (appending) <paramref name="path"/>, creating its folder.</summary>
    /// <param name="path">The file.</param>
    /// <param name="logger">Where the resume rewrite reports what it dropped (default: nowhere).</param>
    public JsonlMetricSink(string path, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        _logger = logger ?? NullLogger.Instance;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _stream = OpenAppend(Path);
    }

    /// <summary>The file written.</summary>
    public string Path { get; }

    private static FileStream OpenAppend(string path) =>
        new(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0); // unbuffered: each line is one write

    /// <inheritdoc />
    public async ValueTask WriteAsync(StepMetrics metrics, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("step", metrics.Step);
            json.WriteString("time", metrics.Timestamp.UtcDateTime.ToString("O"));
            foreach ((string key, double value) in metrics.Values)
            {
                if (double.IsFinite(value)) json.WriteNumber(key, value);
                else json.WriteString(key, double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
            }
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        await _stream.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Rewrites the file atomically (a temp file renamed over it) keeping only whole JSON lines whose <c>step</c> is
    /// below <paramref name="step"/>: the lines of steps the run trains again, a half-written last line and any line
    /// that is not a JSON object with a step are dropped (the damaged ones with a warning).
    /// </summary>
    /// <param name="step">The run's first step.</param>
    /// <param name="cancellationToken">Cancels the rewrite before the rename.</param>
    /// <returns>A task that completes when the file is rewritten and reopened.</returns>
    public async ValueTask DiscardFromStepAsync(long step, CancellationToken cancellationToken = default)
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        try
        {
            byte[] content = await File.ReadAllBytesAsync(Path, cancellationToken).ConfigureAwait(false);
            var kept = new MemoryStream(content.Length);
            long keptCount = 0, dropped = 0, damaged = 0;
            int start = 0;
            while (start < content.Length)
            {
                int end = Array.IndexOf(content, (byte)'\n', start);
                bool whole = end >= 0;
                ReadOnlySpan<byte> line = content.AsSpan(start, (whole ? end : content.Length) - start);
                start = whole ? end + 1 : content.Length;
                if (line.IsEmpty || line.Trim((byte)'\r').IsEmpty) continue;
                long? lineStep = whole ? StepOf(line) : null;
                if (lineStep is null) damaged++;
                else if (lineStep >= step) dropped++;
                else
                {
                    kept.Write(line);
                    kept.WriteByte((byte)'\n');
                    keptCount++;
                }
            }
            if (dropped > 0 || damaged > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                CheckpointFiles.WriteBytesAtomic(Path, kept.GetBuffer().AsSpan(0, (int)kept.Length));
                if (damaged > 0) MetricsLog.DroppedDamaged(_logger, Path, damaged);
                MetricsLog.Discarded(_logger, Path, keptCount, dropped, step);
            }
        }
        finally
        {
            _stream = OpenAppend(Path);
        }
    }

    /// <summary>The <c>step</c> of a JSON object line, or null when the line is not one.</summary>
    private static long? StepOf(ReadOnlySpan<byte> line)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(line.ToArray());
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("step", out JsonElement value) && value.TryGetInt64(out long step) ? step : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stream.FlushAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
