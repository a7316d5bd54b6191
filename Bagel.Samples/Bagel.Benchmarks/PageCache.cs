using System.Runtime.InteropServices;

namespace Bagel.Benchmarks;

/// <summary>Asks the kernel to drop a file's clean pages from the page cache (posix_fadvise DONTNEED).</summary>
internal static partial class PageCache
{
    /// <summary>POSIX_FADV_DONTNEED on Linux: the pages are not needed soon; clean ones are dropped.</summary>
    private const int PosixFadviseDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(int fd, long offset, long length, int advice);

    /// <summary>Tries to evict <paramref name="path"/> from the page cache; returns whether the kernel accepted the advice.</summary>
    public static bool TryEvict(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        int fd = (int)stream.SafeFileHandle.DangerousGetHandle();
        return PosixFadvise(fd, 0, 0, PosixFadviseDontNeed) == 0;
    }
}
