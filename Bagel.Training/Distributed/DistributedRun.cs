using Bagel.Core.Distributed;

namespace Bagel.Training.Distributed;

/// <summary>
/// The process group of this process's training run, like <c>torch.distributed</c>'s default group: set once by the
/// entry point (<c>Bagel.Train</c>, <see cref="Recipes.TinyPreset"/>) with <see cref="Use"/>, read by the parts that
/// depend on the rank (the data pipeline's shard, the per-rank seed, the trainer's default group). Default: a single
/// process.
/// </summary>
public static class DistributedRun
{
    private static IProcessGroup _current = SingleProcessGroup.Instance;

    /// <summary>The group in use (default <see cref="SingleProcessGroup.Instance"/>).</summary>
    public static IProcessGroup Current => Volatile.Read(ref _current);

    /// <summary>Whether this process is rank 0 (which logs, writes metrics and checkpoints).</summary>
    public static bool IsMainRank => Current.Rank == 0;

    /// <summary>Makes <paramref name="group"/> the current group until the returned scope is disposed (then the previous one is back).</summary>
    /// <param name="group">The group.</param>
    /// <returns>The scope.</returns>
    public static IDisposable Use(IProcessGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        IProcessGroup previous = Interlocked.Exchange(ref _current, group);
        return new Scope(previous);
    }

    private sealed class Scope(IProcessGroup previous) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) Volatile.Write(ref _current, previous);
        }
    }
}
