using Bagel.Core.Batching;

namespace Bagel.Training.Validation;

/// <summary>One dataset group of a <see cref="ValidationSet"/>: its name and its fixed, finite list of packed batches.</summary>
/// <param name="Name">The dataset group name (e.g. <c>t2i_pretrain</c>); it becomes part of the metric keys
/// <c>val/{Name}/mse</c> and <c>val/{Name}/ce</c>, so it must not contain '/'.</param>
/// <param name="Batches">The batches, evaluated in this order every time.</param>
public sealed record ValidationGroup(string Name, IReadOnlyList<PackedBatch> Batches);

/// <summary>
/// A held-out validation set: named dataset groups, each a finite list of packed batches built once and reused, so
/// every evaluation sees the same samples with the same timesteps and conditioning dropouts (they are fixed in the
/// packed batches). Build one from a dataset mix with <see cref="ValidationSetFactory"/>, or from batches in code.
/// The set owns its batches: disposing it disposes them. The trainer only reads it; the caller disposes it after the run.
/// </summary>
public sealed class ValidationSet : IDisposable
{
    private bool _disposed;

    /// <summary>Creates a set from groups. An empty set or a group without batches is accepted here and reported by
    /// <c>TrainerBuilder.Build</c> (with every other bad value); see <see cref="Problems"/>.</summary>
    /// <param name="groups">The groups, in the order they are evaluated and logged.</param>
    /// <exception cref="ArgumentException">A group name is empty, contains '/', or appears twice; or a batch is null.</exception>
    public ValidationSet(IEnumerable<ValidationGroup> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        List<ValidationGroup> list = [.. groups];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (ValidationGroup group in list)
        {
            ArgumentNullException.ThrowIfNull(group, nameof(groups));
            if (string.IsNullOrWhiteSpace(group.Name))
                throw new ArgumentException("A validation group has an empty name; name it after its dataset group (e.g. t2i_pretrain).", nameof(groups));
            if (group.Name.Contains('/', StringComparison.Ordinal))
                throw new ArgumentException($"Validation group name '{group.Name}' contains '/', which separates the parts of its metric keys (val/<group>/mse).", nameof(groups));
            if (!seen.Add(group.Name))
                throw new ArgumentException($"Validation group '{group.Name}' appears twice; group names must be unique.", nameof(groups));
            if (group.Batches is null || group.Batches.Any(b => b is null))
                throw new ArgumentException($"Validation group '{group.Name}' has a null batch list or a null batch.", nameof(groups));
        }
        Groups = list;
    }

    /// <summary>The groups, in evaluation order.</summary>
    public IReadOnlyList<ValidationGroup> Groups { get; }

    /// <summary>Batches over all groups.</summary>
    public int BatchCount => Groups.Sum(g => g.Batches.Count);

    /// <summary>Why this set cannot be evaluated (no group, a group without batches); empty when it can.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Groups.Count == 0) problems.Add("The validation set has no group; give at least one dataset group with batches.");
        foreach (ValidationGroup group in Groups.Where(g => g.Batches.Count == 0))
            problems.Add($"Validation group '{group.Name}' has no batch; give it at least one (validation_batches >= 1).");
        return problems;
    }

    /// <summary>Disposes every batch of every group.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (ValidationGroup group in Groups)
            foreach (PackedBatch batch in group.Batches) batch.Dispose();
    }
}
