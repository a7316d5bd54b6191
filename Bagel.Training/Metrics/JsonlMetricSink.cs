using System.Text;
using System.Text.Json;
using Bagel.Core.Metrics;

namespace Bagel.Training.Metrics;

/// <summary>
/// Writes one JSON object per logged step to a file: <c>{"step":123,"time":"2026-...Z","mse":0.4,...}</c>, metric keys
/// under the reference's W&amp;B names. Appends, so a resumed run continues the same file. Non-finite values are written
/// as the strings <c>"NaN"</c>, <c>"Infinity"</c> and <c>"-Infinity"</c>.
/// </summary>
public sealed class JsonlMetricSink : IMetricSink
{
    /// <summary>The reference's results folder holds it under this name by default.</summary>
    public const string DefaultFileName = "metrics.jsonl";

    private readonly StreamWriter _writer;

    /// <summary>Opens (appending) <paramref name="path"/>, creating its folder.</summary>
    public JsonlMetricSink(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _writer = new StreamWriter(new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
    }

    /// <summary>The file written.</summary>
    public string Path { get; }

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
        await _writer.WriteLineAsync(Encoding.UTF8.GetString(buffer.ToArray()).AsMemory(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _writer.FlushAsync().ConfigureAwait(false);
        await _writer.DisposeAsync().ConfigureAwait(false);
    }
}
