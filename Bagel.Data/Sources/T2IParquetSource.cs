using Bagel.Core.DataStatus;
using System.Runtime.CompilerServices;
using Bagel.Data.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Sources;

/// <summary>
/// Text-to-image parquet shards (the reference's <c>t2i_pretrain</c>): columns <c>image</c> (binary, an encoded
/// image) and <c>captions</c> (a JSON object serialised as a string); other columns are ignored. The sharding unit is
/// the file; files are read one row group at a time. Position: <c>[file index in the worker slice, row group, row]</c>.
/// </summary>
public sealed class T2IParquetSource : RawSampleSource
{
    private readonly List<string> _files;

    /// <summary>Creates the source from the dataset folders of a group.</summary>
    /// <param name="group">The group name.</param>
    /// <param name="dataDirectories">One parquet folder per dataset of the group.</param>
    /// <param name="numUsedData">Files taken from each folder (repeated when a folder has fewer).</param>
    /// <param name="logger">For messages.</param>
    public T2IParquetSource(string group, IReadOnlyList<string> dataDirectories, IReadOnlyList<long> numUsedData, ILogger? logger = null)
        : base(group, logger)
    {
        ArgumentNullException.ThrowIfNull(dataDirectories);
        ArgumentNullException.ThrowIfNull(numUsedData);
        if (dataDirectories.Count != numUsedData.Count)
            throw new ArgumentException($"{dataDirectories.Count} folders but {numUsedData.Count} num_used_data entries for group '{group}'.");
        _files = dataDirectories.Zip(numUsedData).SelectMany(p => ParquetFiles.Select(p.First, p.Second, group)).ToList();
    }

    /// <inheritdoc />
    public override SourcePositionKind PositionKind => SourcePositionKind.T2IParquet;

    /// <inheritdoc />
    public override int UnitCount => _files.Count;

    /// <inheritdoc />
    protected override object ShardUnits(WorkerSlice slice, Func<int, int> randomBelow) =>
        UnitSharding.Slice(_files, StringComparer.Ordinal, randomBelow, slice, Group);

    /// <inheritdoc />
    protected override async IAsyncEnumerable<RawSample> ReadPassAsync(object units, WorkerSlice slice, IReadOnlyList<long>? resumeAfter, DataSkipCounters skips,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var workerFiles = (IReadOnlyList<string>)units;
        int fileStart = resumeAfter is null ? 0 : (int)resumeAfter[0];
        int groupStart = resumeAfter is null ? 0 : (int)resumeAfter[1];
        long rowStart = resumeAfter is null ? 0 : resumeAfter[2] + 1;
        for (int fileIndex = fileStart; fileIndex < workerFiles.Count; fileIndex++)
        {
            string path = workerFiles[fileIndex];
            FileStream? stream = null;
            int rowGroups = 0;
            try
            {
                stream = File.OpenRead(path);
                rowGroups = await ParquetFiles.RowGroupCountAsync(stream, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                skips.Skip(Group, SkipReason.CorruptParquet, path, $"cannot open as parquet: {ex.Message}");
                if (stream is not null) await stream.DisposeAsync().ConfigureAwait(false);
                stream = null;
            }
            if (stream is null)
            {
                groupStart = 0;
                rowStart = 0;
                continue;
            }
            await using (stream.ConfigureAwait(false))
            {
                for (int rowGroup = groupStart; rowGroup < rowGroups; rowGroup++)
                {
                    string where = $"{path} row group {rowGroup}";
                    RowGroupRows? rows = null;
                    try
                    {
                        rows = await ParquetFiles.ReadRowGroupAsync(stream, rowGroup, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        skips.Skip(Group, SkipReason.CorruptParquet, where, $"cannot read the row group: {ex.Message}");
                    }
                    if (rows is not null && (!rows.Columns.Contains("image") || !rows.Columns.Contains("captions")))
                    {
                        skips.Skip(Group, SkipReason.BadParquetSchema, where, $"needs columns 'image' and 'captions'; found: {string.Join(", ", rows.Columns)}.");
                        rows = null;
                    }
                    for (int row = (int)rowStart; rows is not null && row < rows.Rows.Count; row++)
                    {
                        yield return new RawSample(new SampleDataIndex(Group, slice.Worker, SourcePosition.T2I(fileIndex, rowGroup, row)), $"{where} row {row}",
                            new T2IPayload(ParquetFiles.Bytes(rows.Cell(row, "image")), ParquetFiles.Text(rows.Cell(row, "captions"))));
                    }
                    rowStart = 0;
                }
            }
            groupStart = 0;
        }
    }
}
