using Bagel.Core.DataStatus;
using System.Runtime.CompilerServices;
using System.Text;
using Bagel.Data.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Sources;

/// <summary>
/// VLM conversations (the reference's <c>vlm_sft</c>): JSONL files whose image paths resolve against the dataset's
/// image folder. The sharding unit is the line. Unlike the reference, lines are not held in memory: only their byte
/// offsets are (a line is re-read when its turn comes). Position: <c>[line index in the worker slice]</c>.
/// </summary>
public sealed class VlmJsonlSource : RawSampleSource
{
    private readonly List<Line> _lines = [];
    private readonly List<(string Jsonl, string ImageDir)> _files = [];

    /// <summary>Creates the source.</summary>
    /// <param name="group">The group name.</param>
    /// <param name="jsonlPaths">One JSONL file per dataset of the group.</param>
    /// <param name="imageDirectories">The image folder of each dataset (<c>data_dir</c>).</param>
    /// <param name="numUsedData">Lines taken from each file (after the optional shuffle).</param>
    /// <param name="shuffleRandomBelow">When not null, the lines of each file are shuffled with this generator (seeded
    /// with <c>shuffle_seed</c>) before truncation, as <c>shuffle_lines</c> does.</param>
    /// <param name="logger">For messages.</param>
    public VlmJsonlSource(string group, IReadOnlyList<string> jsonlPaths, IReadOnlyList<string> imageDirectories, IReadOnlyList<long> numUsedData,
        Func<int, int>? shuffleRandomBelow = null, ILogger? logger = null)
        : base(group, logger)
    {
        ArgumentNullException.ThrowIfNull(jsonlPaths);
        ArgumentNullException.ThrowIfNull(imageDirectories);
        ArgumentNullException.ThrowIfNull(numUsedData);
        if (jsonlPaths.Count != imageDirectories.Count || jsonlPaths.Count != numUsedData.Count)
            throw new ArgumentException($"group '{group}': {jsonlPaths.Count} JSONL files, {imageDirectories.Count} image folders and {numUsedData.Count} num_used_data entries must match.");
        for (int f = 0; f < jsonlPaths.Count; f++)
        {
            _files.Add((jsonlPaths[f], imageDirectories[f]));
            var lines = IndexLines(jsonlPaths[f], f);
            if (shuffleRandomBelow is not null)
            {
                for (int i = lines.Count - 1; i > 0; i--)
                {
                    int j = shuffleRandomBelow(i + 1);
                    (lines[i], lines[j]) = (lines[j], lines[i]);
                }
            }
            _lines.AddRange(lines.Take((int)Math.Min(numUsedData[f], lines.Count)));
        }
    }

    /// <inheritdoc />
    public override SourcePositionKind PositionKind => SourcePositionKind.VlmJsonl;

    /// <inheritdoc />
    public override int UnitCount => _lines.Count;

    /// <inheritdoc />
    protected override object ShardUnits(WorkerSlice slice, Func<int, int> randomBelow) =>
        UnitSharding.Slice(_lines, Comparer<Line>.Create((a, b) => a.File != b.File ? a.File.CompareTo(b.File) : a.Number.CompareTo(b.Number)),
                                          randomBelow, slice, Group);

    /// <inheritdoc />
    protected override async IAsyncEnumerable<RawSample> ReadPassAsync(object units, WorkerSlice slice, IReadOnlyList<long>? resumeAfter, DataSkipCounters skips,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var workerLines = (IReadOnlyList<Line>)units;
        var streams = new Dictionary<int, FileStream>();
        try
        {
            for (int index = resumeAfter is null ? 0 : (int)resumeAfter[0] + 1; index < workerLines.Count; index++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Line line = workerLines[index];
                var (jsonl, imageDir) = _files[line.File];
                if (!streams.TryGetValue(line.File, out var stream)) streams[line.File] = stream = File.OpenRead(jsonl);
                stream.Position = line.Offset;
                byte[] buffer = new byte[line.Length];
                await stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
                yield return new RawSample(new SampleDataIndex(Group, slice.Worker, SourcePosition.Vlm(index)), $"{jsonl} line {line.Number}",
                    new VlmPayload(Encoding.UTF8.GetString(buffer), imageDir, line.Number, jsonl));
            }
        }
        finally
        {
            foreach (var s in streams.Values) await s.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static List<Line> IndexLines(string path, int file)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"JSONL file '{path}' does not exist.", path);
        var lines = new List<Line>();
        using var stream = File.OpenRead(path);
        var buffer = new byte[1 << 16];
        long offset = 0, start = 0, number = 1;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                long end = offset + i;
                AddLine(lines, file, number++, start, end);
                start = end + 1;
            }
            offset += read;
        }
        AddLine(lines, file, number, start, offset);
        return lines;
    }

    private static void AddLine(List<Line> lines, int file, long number, long start, long end)
    {
        // Blank lines are not records (the reference would count them as malformed lines; we simply skip them).
        if (end > start) lines.Add(new Line(file, number, start, (int)(end - start)));
    }

    private readonly record struct Line(int File, long Number, long Offset, int Length);
}
