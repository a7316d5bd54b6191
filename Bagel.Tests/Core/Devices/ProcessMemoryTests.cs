using Bagel.Core.Devices;

namespace Bagel.Tests.Core.Devices;

/// <summary><see cref="ProcessMemory"/> on this (Linux) machine; the per-rank gather runs in <c>SubGroupTests</c>' mpirun child.</summary>
public sealed class ProcessMemoryTests
{
    [Fact]
    public void PeakRisesWithTouchedMemory_AndResetBringsItDown()
    {
        ProcessMemorySnapshot before = ProcessMemory.Snapshot();
        Assert.True(before.ResidentBytes > 10 << 20, before.ToString());
        Assert.True(before.PeakResidentBytes >= before.ResidentBytes, before.ToString());
        Assert.True(ProcessMemory.TryResetPeak());
        long resetPeak = ProcessMemory.PeakResidentBytes();

        const int size = 256 << 20;
        byte[] block = GC.AllocateUninitializedArray<byte>(size);
        for (int i = 0; i < size; i += 4096) block[i] = 1; // touch every page
        ProcessMemorySnapshot during = ProcessMemory.Snapshot();
        Assert.True(during.PeakResidentBytes >= resetPeak + size * 0.9, $"{resetPeak} -> {during}");
        Assert.True(during.ResidentBytes >= size, during.ToString());
        GC.KeepAlive(block);
        Assert.Contains(" MiB, peak ", during.ToString(), StringComparison.Ordinal);
    }
}
