using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;

namespace Bagel.Tests.Training.Checkpoints;

public sealed class CheckpointFilesTests
{
    [Fact]
    public void AFolderCanBeOpenedAndFsyncedThroughLibc()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Folders are not fsynced on Windows.");
        using var folder = new TempDirectory();

        int fd = PosixFile.Open(folder.Path, PosixFile.ReadOnly);

        Assert.True(fd >= 0, $"open failed for {folder.Path}");
        Assert.Equal(0, PosixFile.Fsync(fd));
        Assert.Equal(0, PosixFile.Close(fd));
        CheckpointFiles.FsyncDirectory(folder.Path); // and the public wrapper does not throw
    }

    [Fact]
    public void AtomicJsonWritesLeaveNoTempFileAndReadsNameTheFileOnError()
    {
        using var folder = new TempDirectory();
        string path = folder.File("state.json");
        var state = new TrainState(TrainState.CurrentFormatVersion, 3, 0, 0, 10, 2, DateTimeOffset.UnixEpoch);

        state.Write(path);
        File.WriteAllText(folder.File("broken.json"), "{ not json");

        Assert.Equal(state, TrainState.Read(path));
        Assert.Equal(["broken.json", "state.json"], Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Contains("broken.json", Assert.Throws<CheckpointException>(() => TrainState.Read(folder.File("broken.json"))).Message, StringComparison.Ordinal);
    }
}
