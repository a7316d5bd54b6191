using System.Globalization;
using System.Text.Json.Nodes;

namespace Bagel.Core.DataStatus;

/// <summary>
/// Converts between <see cref="DataStatusDocument"/> and the reference's <c>data_status.pt</c> shape, written as
/// JSON: a list by rank of <c>{group: {worker_id: position}}</c>, where a position is <c>[file, row_group, row]</c>
/// (T2I), <c>[row_group, row]</c> (edit) or a bare row number (VLM), and a rank without status is <c>null</c>.
/// Only positions exist in that shape; buffers and RNG states are not representable.
/// </summary>
public static class ReferenceDataStatusView
{
    /// <summary>The reference's shape of <paramref name="document"/>.</summary>
    /// <param name="document">The document.</param>
    /// <returns>A JSON array with one object per rank.</returns>
    public static JsonArray ToReferenceShape(DataStatusDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var ranks = new JsonArray();
        foreach (RankDataStatus rank in document.Ranks)
        {
            var groups = new JsonObject();
            foreach ((string group, IReadOnlyDictionary<int, SourcePosition> workers) in rank.Positions.OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var byWorker = new JsonObject();
                foreach ((int worker, SourcePosition position) in workers.OrderBy(w => w.Key))
                    byWorker[worker.ToString(CultureInfo.InvariantCulture)] = ToNode(position);
                groups[group] = byWorker;
            }
            ranks.Add(groups);
        }
        return ranks;
    }

    /// <summary>
    /// Builds a document from the reference's shape (e.g. a <c>data_status.pt</c> converted to JSON). The position
    /// kind is inferred: 3 numbers = T2I, 2 = edit, a bare number = VLM. Buffers and RNG states start empty.
    /// </summary>
    /// <param name="referenceShape">The list by rank (null entries allowed).</param>
    /// <param name="numWorkers">The worker count per rank it was saved with.</param>
    /// <returns>The document (world size = the list's length).</returns>
    /// <exception cref="DataStatusFormatException">The structure or a position does not have the reference's shape.</exception>
    public static DataStatusDocument FromReferenceShape(JsonNode referenceShape, int numWorkers)
    {
        ArgumentNullException.ThrowIfNull(referenceShape);
        if (referenceShape is not JsonArray ranks)
            throw new DataStatusFormatException("The reference data status is a list by rank; got " + referenceShape.GetValueKind() + ".");
        var result = new List<RankDataStatus>();
        for (int r = 0; r < ranks.Count; r++)
        {
            var positions = new Dictionary<string, IReadOnlyDictionary<int, SourcePosition>>();
            if (ranks[r] is JsonObject groups)
            {
                foreach ((string group, JsonNode? workersNode) in groups)
                {
                    if (workersNode is not JsonObject workers)
                        throw new DataStatusFormatException($"Reference data status rank {r}, group '{group}': expected {{worker_id: position}}.");
                    var byWorker = new Dictionary<int, SourcePosition>();
                    foreach ((string workerKey, JsonNode? positionNode) in workers)
                    {
                        if (!int.TryParse(workerKey, NumberStyles.None, CultureInfo.InvariantCulture, out int worker))
                            throw new DataStatusFormatException($"Reference data status rank {r}, group '{group}': worker id '{workerKey}' is not a number.");
                        byWorker[worker] = FromNode(positionNode, $"rank {r}, group '{group}', worker {worker}");
                    }
                    positions[group] = byWorker;
                }
            }
            else if (ranks[r] is not null)
            {
                throw new DataStatusFormatException($"Reference data status rank {r}: expected {{group: ...}} or null.");
            }
            result.Add(new RankDataStatus { Rank = r, Positions = positions });
        }
        var document = new DataStatusDocument { WorldSize = ranks.Count, NumWorkers = numWorkers, Ranks = result };
        document.Validate("reference data status");
        return document;
    }

    private static JsonNode ToNode(SourcePosition position) =>
        position.Kind == SourcePositionKind.VlmJsonl
            ? JsonValue.Create(position.Indexes[0])
            : new JsonArray([.. position.Indexes.Select(i => (JsonNode)JsonValue.Create(i))]);

    private static SourcePosition FromNode(JsonNode? node, string where)
    {
        try
        {
            if (node is JsonValue value && value.TryGetValue(out long row)) return SourcePosition.Vlm(row);
            if (node is JsonArray array)
            {
                long[] indexes = [.. array.Select(item => item?.GetValue<long>() ?? throw new DataStatusFormatException($"Reference data status {where}: a position holds null."))];
                SourcePositionKind kind = indexes.Length switch
                {
                    3 => SourcePositionKind.T2IParquet,
                    2 => SourcePositionKind.EditParquet,
                    _ => throw new DataStatusFormatException($"Reference data status {where}: a position has 2 (edit) or 3 (T2I) numbers; got {indexes.Length}."),
                };
                return new SourcePosition(kind, indexes);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException)
        {
            throw new DataStatusFormatException($"Reference data status {where}: bad position ({ex.Message}).", ex);
        }
        throw new DataStatusFormatException($"Reference data status {where}: a position is a number (VLM) or a list of 2 or 3 numbers.");
    }
}
