using TorchSharp;

namespace Bagel.Training.Loop;

/// <summary>
/// Holds torch's intra-op thread count at a given value on the current thread for a synchronous stretch of work, and
/// puts the thread's previous value back afterwards. libtorch's CPU build takes its thread count from OpenMP, whose
/// setting belongs to the thread that made it: <c>torch.set_num_threads</c> on one thread does not reach a thread-pool
/// thread that already has its own value, and an async training loop resumes on whichever pool thread is free. The
/// trainer therefore applies its count (<see cref="TrainerBuilder.UseCpuThreads"/>, else the count of the thread that
/// built it) around each step's computation and each validation, so every step uses that count (which decides how reductions are split, and so the last
/// bits of the results) whatever thread runs it, and leaves no pool thread changed. A count of 0 changes nothing. The
/// stretch must not contain an <c>await</c>.
/// </summary>
internal readonly struct TorchThreadScope : IDisposable
{
    private readonly int _previous;
    private readonly int _threads;

    private TorchThreadScope(int previous, int threads)
    {
        _previous = previous;
        _threads = threads;
    }

    /// <summary>Sets <paramref name="threads"/> on this thread until <see cref="Dispose"/> (a no-op when already so).</summary>
    public static TorchThreadScope Enter(int threads)
    {
        int previous = torch.get_num_threads();
        if (threads > 0 && previous != threads) torch.set_num_threads(threads);
        return new TorchThreadScope(previous, threads);
    }

    /// <summary>Puts this thread's previous count back.</summary>
    public void Dispose()
    {
        if (_threads > 0 && _previous != _threads) torch.set_num_threads(_previous);
    }
}
