using TorchSharp;

namespace Bagel.Tests.Infrastructure;

/// <summary>
/// Sets torch's intra-op thread count for a test and puts the previous one back when disposed. The count changes
/// libtorch's reduction order, so a test that left it changed would make later in-process runs differ in the last bits
/// from runs in child processes (which start with the default). The count belongs to the OS thread (OpenMP's setting):
/// use it around synchronous code only, never across an <c>await</c>, which would put the count back on another thread
/// and leave the first one changed; a trainer holds its own with <c>UseCpuThreads</c>.
/// </summary>
internal sealed class TorchThreads : IDisposable
{
    private readonly int _before;

    private TorchThreads(int threads)
    {
        _before = torch.get_num_threads();
        torch.set_num_threads(threads);
    }

    /// <summary>Runs with <paramref name="threads"/> intra-op threads until disposed.</summary>
    public static TorchThreads Use(int threads) => new(threads);

    /// <inheritdoc />
    public void Dispose() => torch.set_num_threads(_before);
}
