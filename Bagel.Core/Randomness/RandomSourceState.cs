namespace Bagel.Core.Randomness;

/// <summary>
/// The saved state of a <see cref="SeededRandomSource"/>: enough to continue every one of its sequences exactly.
/// </summary>
/// <param name="Seed">The stream seed the source was created with (re-creates the tensor generator lazily).</param>
/// <param name="Scalar">The scalar generator's state.</param>
/// <param name="TorchGenerator">The raw state bytes of the source's torch CPU generator (libtorch's mt19937 state,
/// about 5 KB; base64 in JSON), or null while no tensor has been drawn.</param>
public sealed record RandomSourceState(ulong Seed, ScalarRngState Scalar, byte[]? TorchGenerator = null)
{
    /// <inheritdoc />
    public bool Equals(RandomSourceState? other) =>
        other is not null && Seed == other.Seed && Scalar.Equals(other.Scalar)
        && (TorchGenerator is null ? other.TorchGenerator is null
            : other.TorchGenerator is not null && TorchGenerator.AsSpan().SequenceEqual(other.TorchGenerator));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Seed, Scalar, TorchGenerator?.Length ?? -1);
}
