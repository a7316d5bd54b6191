using System.Runtime.InteropServices;

namespace Bagel.Training.Checkpoints;

/// <summary>The three libc calls needed to fsync a folder (Linux and macOS).</summary>
internal static partial class PosixFile
{
    /// <summary>POSIX <c>O_RDONLY</c>.</summary>
    public const int ReadOnly = 0;

    [DllImport("libc", EntryPoint = "open", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    public static extern int Close(int fd);
}
