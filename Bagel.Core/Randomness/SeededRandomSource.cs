using Bagel.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Randomness;

/// <summary>
/// The default <see cref="IRandomSource"/>: scalar draws from <see cref="Xoshiro256StarStar"/>, tensor draws from a
/// private torch CPU generator, both seeded from one stream seed. <see cref="GetState"/> / <see cref="SetState"/>
/// save and restore both, so a resumed run continues the exact sequences.
/// </summary>
/// <remarks>
/// Tensor draws are always made in fp32 on the CPU generator and then cast and moved (TorchSharp 0.107's generators
/// are CPU-only). The values therefore do not depend on the device or on the requested dtype's kernel: a CUDA run
/// and a CPU run with the same seed see the same noise (bf16 requests get the fp32 draw rounded to bf16). The cost
/// is one host-to-device copy per draw.
/// </remarks>
public sealed class SeededRandomSource : IRandomSource, IDisposable
{
    private readonly Xoshiro256StarStar _scalar;
    private Generator? _tensorGenerator;
    private bool _disposed;

    /// <summary>Creates a source from a stream seed.</summary>
    /// <param name="streamSeed">The stream seed, usually from <see cref="SeedDerivation.Derive"/>.</param>
    public SeededRandomSource(ulong streamSeed)
    {
        Seed = streamSeed;
        _scalar = new Xoshiro256StarStar(streamSeed);
    }

    /// <summary>Creates the source for <paramref name="purpose"/> on a rank / worker from the user's seed.</summary>
    /// <param name="seed">The user's seed.</param>
    /// <param name="purpose">The purpose name (see <see cref="RandomPurposes"/>).</param>
    /// <param name="rank">The distributed rank (default 0).</param>
    /// <param name="worker">The data worker id (default 0).</param>
    /// <returns>A new source.</returns>
    public static SeededRandomSource ForPurpose(long seed, string purpose, int rank = 0, int worker = 0) =>
        new(SeedDerivation.Derive(seed, purpose, rank, worker));

    /// <summary>Creates a source that continues from a saved state.</summary>
    /// <param name="state">A state from <see cref="GetState"/>.</param>
    /// <returns>A new source.</returns>
    public static SeededRandomSource FromState(RandomSourceState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var source = new SeededRandomSource(state.Seed);
        source.SetState(state);
        return source;
    }

    /// <summary>The stream seed this source was created with.</summary>
    public ulong Seed { get; }

    /// <inheritdoc />
    public double NextUniform() => _scalar.NextDouble();

    /// <inheritdoc />
    public long NextInt(long minInclusive, long maxExclusive) => _scalar.NextInt64(minInclusive, maxExclusive);

    /// <inheritdoc />
    public double NextStandardNormal() => _scalar.NextStandardNormal();

    /// <inheritdoc />
    public Tensor NextStandardNormalTensor(ReadOnlySpan<long> shape, ScalarType dtype, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Generator generator = TensorGenerator();
        Tensor draw = torch.randn(shape, ScalarType.Float32, torch.CPU, generator: generator);
        if (dtype == ScalarType.Float32 && device.type == DeviceType.CPU) return draw;
        using (draw)
            return draw.to(dtype, device);
    }

    /// <summary>Saves the state of every sequence of this source.</summary>
    /// <returns>The state.</returns>
    public RandomSourceState GetState()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        byte[]? torchState = null;
        if (_tensorGenerator is not null)
        {
            using Tensor state = _tensorGenerator.get_state();
            torchState = state.data<byte>().ToArray();
        }
        return new RandomSourceState(Seed, _scalar.GetState(), torchState);
    }

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    /// <param name="state">The saved state; its seed must be this source's seed.</param>
    /// <exception cref="ArgumentException">The state belongs to another stream, or its torch generator bytes have the wrong size.</exception>
    public void SetState(RandomSourceState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (state.Seed != Seed)
            throw new ArgumentException($"The saved random state belongs to stream seed {state.Seed}, not {Seed}: it was saved for another purpose, rank or worker.", nameof(state));
        _scalar.SetState(state.Scalar);
        if (state.TorchGenerator is null)
        {
            // No tensor was drawn before the save: start the tensor stream afresh from the seed.
            _tensorGenerator?.Dispose();
            _tensorGenerator = null;
            return;
        }
        Generator generator = TensorGenerator();
        using (Tensor current = generator.get_state())
            TorchGlobalRandom.CheckStateSize(state.TorchGenerator, current.NumberOfElements);
        using Tensor bytes = torch.tensor(state.TorchGenerator, ScalarType.Byte);
        generator.set_state(bytes);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _tensorGenerator?.Dispose();
        _tensorGenerator = null;
    }

    private Generator TensorGenerator()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_tensorGenerator is null)
        {
            TorchRuntime.EnsureLoaded();
            _tensorGenerator = new Generator(Seed);
        }
        return _tensorGenerator;
    }
}
