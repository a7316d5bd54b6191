using Bagel.Core.DataStatus;
using System.Runtime.CompilerServices;
using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Sources;

/// <summary>
/// Editing parquet shards (the reference's <c>unified_edit</c>): columns <c>image_list</c> (list of encoded images)
/// and <c>instruction_list</c> (list of lists of alternative wordings). The sharding unit is the row group; the
/// row-group counts come from the parquet_info JSON when given (matched path-independently) and otherwise from the
/// shards' own footers — unlike the reference, a shard missing from parquet_info is read, not silently dropped.
/// Position: <c>[row-group index in the worker slice, row]</c>.
/// </summary>
public sealed class EditParquetSource : RawSampleSource
{
    private readonly List<(string File, int RowGroup)> _units = [];

    private EditParquetSource(string group, ILogger? logger) : base(group, logger)
    {
    }

    /// <inheritdoc />
    public override SourcePositionKind PositionKind => SourcePositionKind.EditParquet;

    /// <inheritdoc />
    public override int UnitCount => _units.Count;

    /// <summary>Creates the source, listing row groups from parquet_info or from the footers.</summary>
    /// <param name="group">The group name.</param>
    /// <param name="dataDirectories">One parquet folder per dataset of the group.</param>
    /// <param name="numUsedData">Files taken from each folder.</param>
    /// <param name="parquetInfo">The merged parquet_info of the group's datasets, or null to read footers.</param>
    /// <param name="logger">For messages.</param>
    /// <param name="skips">When given, a shard whose footer cannot be read (a corrupt file that parquet_info does not
    /// describe) is a counted <see cref="SkipReason.CorruptParquet"/> skip contributing no row group; when null it
    /// throws <see cref="DataConfigException"/>.</param>
    /// <param name="cancellationToken">Stops the listing.</param>
    /// <returns>The source.</returns>
    public static async Task<EditParquetSource> CreateAsync(string group, IReadOnlyList<string> dataDirectories, IReadOnlyList<long> numUsedData,
        ParquetInfo? parquetInfo, ILogger? logger = null, DataSkipCounters? skips = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataDirectories);
        ArgumentNullException.ThrowIfNull(numUsedData);
        var source = new EditParquetSource(group, logger);
        var unreadable = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (folder, used) in dataDirectories.Zip(numUsedData))
        {
            foreach (string file in ParquetFiles.Select(folder, used, group))
            {
                if (unreadable.Contains(file)) continue;
                ParquetShardInfo? facts = parquetInfo?.Find(file);
                if (facts is null)
                {
                    try
                    {
                        facts = await ParquetInfo.ReadFooterAsync(file, cancellationToken).ConfigureAwait(false);
                    }
                    catch (DataConfigException ex) when (skips is not null)
                    {
                        unreadable.Add(file);
                        skips.Skip(group, SkipReason.CorruptParquet, file, $"cannot list its row groups, so the whole file is left out: {ex.Message}");
                        continue;
                    }
                }
                for (int rowGroup = 0; rowGroup < facts.NumRowGroups; rowGroup++) source._units.Add((file, rowGroup));
            }
        }
        return source;
    }

    /// <inheritdoc />
    protected override object ShardUnits(WorkerSlice slice, Func<int, int> randomBelow) =>
        UnitSharding.Slice(_units, Comparer<(string File, int RowGroup)>.Create((a, b) =>
        {
            int c = string.CompareOrdinal(a.File, b.File);
            return c != 0 ? c : a.RowGroup.CompareTo(b.RowGroup);
        }), randomBelow, slice, Group);

    /// <inheritdoc />
    protected override async IAsyncEnumerable<RawSample> ReadPassAsync(object units, WorkerSlice slice, IReadOnlyList<long>? resumeAfter, DataSkipCounters skips,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var workerUnits = (IReadOnlyList<(string File, int RowGroup)>)units;
        int unitStart = resumeAfter is null ? 0 : (int)resumeAfter[0];
        long rowStart = resumeAfter is null ? 0 : resumeAfter[1] + 1;
        for (int unit = unitStart; unit < workerUnits.Count; unit++)
        {
            var (path, rowGroup) = workerUnits[unit];
            string where = $"{path} row group {rowGroup}";
            RowGroupRows? rows = null;
            try
            {
                await using var stream = File.OpenRead(path);
                rows = await ParquetFiles.ReadRowGroupAsync(stream, rowGroup, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                skips.Skip(Group, SkipReason.CorruptParquet, where, $"cannot read the row group: {ex.Message}");
            }
            if (rows is not null && (!rows.Columns.Contains("image_list") || !rows.Columns.Contains("instruction_list")))
            {
                skips.Skip(Group, SkipReason.BadParquetSchema, where, $"needs columns 'image_list' and 'instruction_list'; found: {string.Join(", ", rows.Columns)}.");
                rows = null;
            }
            for (int row = (int)rowStart; rows is not null && row < rows.Rows.Count; row++)
            {
                string origin = $"{where} row {row}";
                var images = ParquetFiles.List(rows.Cell(row, "image_list"));
                var instructions = ParquetFiles.List(rows.Cell(row, "instruction_list"));
                if (images is null || instructions is null)
                {
                    skips.Skip(Group, SkipReason.BadParquetSchema, origin, "'image_list' and 'instruction_list' must be lists.");
                    continue;
                }
                var entries = instructions.Select(e => ParquetFiles.List(e) is { } wordings
                    ? (object?)wordings.Select(ParquetFiles.Text).ToList()
                    : e is null ? null : ParquetFiles.Text(e)).ToList();
                yield return new RawSample(new SampleDataIndex(Group, slice.Worker, SourcePosition.Edit(unit, row)), origin,
                    new EditPayload(images.Select(ParquetFiles.Bytes).ToList(), entries));
            }
            rowStart = 0;
        }
    }
}
