using Bagel.Core.Logging;
using Bagel.Core.Native;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Randomness;

/// <summary>
/// torch's global (default) generator: seeds it and saves / restores its state. Parameter initialisation draws from
/// it; Bagel.NET's own draws go through <see cref="IRandomSource"/> instead.
/// </summary>
public static class TorchGlobalRandom
{
    /// <summary>Seeds torch's default CPU generator and, when CUDA is available, every CUDA generator.</summary>
    /// <param name="seed">The seed, e.g. <see cref="SeedDerivation.ReferenceRankSeed"/>.</param>
    /// <param name="rank">The rank, for the log line only.</param>
    /// <param name="logger">Optional logger.</param>
    public static void Seed(long seed, int rank = 0, ILogger? logger = null)
    {
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(seed).Dispose(); // the returned wrapper of the default generator is ours to dispose
        if (torch.cuda.is_available()) torch.cuda.manual_seed_all(seed);
        if (logger is not null) CoreLog.TorchSeeded(logger, seed, rank);
    }

    /// <summary>The default CPU generator's state as bytes (about 5 KB), for a checkpoint.</summary>
    /// <returns>A copy of the state.</returns>
    public static byte[] GetState()
    {
        TorchRuntime.EnsureLoaded();
        using Tensor state = torch.get_rng_state();
        return state.data<byte>().ToArray();
    }

    /// <summary>Restores the default CPU generator's state from <see cref="GetState"/>.</summary>
    /// <param name="state">The saved bytes.</param>
    /// <exception cref="ArgumentException">The bytes are not a CPU generator state of this libtorch (wrong size).</exception>
    public static void SetState(byte[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        TorchRuntime.EnsureLoaded();
        using (Tensor current = torch.get_rng_state())
            CheckStateSize(state, current.NumberOfElements);
        using Tensor bytes = torch.tensor(state, ScalarType.Byte);
        torch.set_rng_state(bytes);
    }

    /// <summary>
    /// Rejects a saved generator state whose size differs from libtorch's (5056 bytes for mt19937 in libtorch 2.x).
    /// libtorch's own check aborts the process from native code, so the size must be checked before the call.
    /// </summary>
    internal static void CheckStateSize(byte[] state, long expectedBytes)
    {
        if (state.Length != expectedBytes)
            throw new ArgumentException(
                $"The saved torch generator state has {state.Length} bytes, but this libtorch's CPU generator state has {expectedBytes}: " +
                "it is corrupted or was saved by an incompatible libtorch.", nameof(state));
    }
}
