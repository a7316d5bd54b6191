using Bagel.Core.Batching;
using TorchSharp;

namespace Bagel.Models.Attention;

/// <summary>
/// The attention structure of one packed sequence (model.md §2.6): one boolean mask per sample, built once per
/// forward and shared by every layer. A sample made only of causal splits carries no mask at all (plain causal
/// attention).
/// </summary>
/// <remarks>
/// Memory: the reference's SDPA path keeps one float mask of Ls x Ls per sample (then a bf16 copy); its flex path
/// needs a compiled block mask. Here each sample holds Ls x Ls booleans (1 byte per entry, none for all-causal
/// samples) and nothing ever spans two samples, so the footprint is sum(Ls²) bytes, never one N x N mask over the
/// pack. Samples are the unit because tokens of different samples never attend to each other.
/// </remarks>
public sealed class PackedAttentionMask : IDisposable
{
    private readonly List<torch.Tensor?> _masks;

    private PackedAttentionMask(IReadOnlyList<SampleLayout> samples, List<torch.Tensor?> masks)
    {
        Samples = samples;
        _masks = masks;
        SampleLengths = [.. samples.Select(s => (long)s.Length)];
        TotalLength = SampleLengths.Sum();
    }

    /// <summary>The samples, in pack order.</summary>
    public IReadOnlyList<SampleLayout> Samples { get; }

    /// <summary>Tokens per sample (the reference's <c>sample_lens</c>).</summary>
    public IReadOnlyList<long> SampleLengths { get; }

    /// <summary>The number of tokens in the pack.</summary>
    public long TotalLength { get; }

    /// <summary>The boolean mask of sample <paramref name="sample"/> ([Ls, Ls], true = may attend; row = query),
    /// or null when the sample is purely causal.</summary>
    /// <param name="sample">The sample index.</param>
    /// <returns>The mask, owned by this object.</returns>
    public torch.Tensor? MaskOf(int sample) => _masks[sample];

    /// <summary>Builds the per-sample masks of <paramref name="samples"/> on <paramref name="device"/>.</summary>
    /// <param name="samples">The samples of the pack, in order; each length must equal the sum of its splits.</param>
    /// <param name="device">Where the masks live (the device of the hidden states).</param>
    /// <returns>The structure; dispose it after the forward (and backward) pass.</returns>
    /// <exception cref="ArgumentException">A sample is empty or its length differs from the sum of its splits.</exception>
    public static PackedAttentionMask Build(IReadOnlyList<SampleLayout> samples, torch.Device device)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var masks = new List<torch.Tensor?>(samples.Count);
        for (int i = 0; i < samples.Count; i++)
        {
            SampleLayout sample = samples[i];
            int splitSum = sample.Splits.Sum(s => s.Length);
            if (sample.Length <= 0 || splitSum != sample.Length || sample.Splits.Any(s => s.Length <= 0))
                throw new ArgumentException(
                    $"Sample {i} has length {sample.Length} but its splits sum to {splitSum} (or one is empty); fix the packer's split lengths.",
                    nameof(samples));
            masks.Add(sample.Splits.All(s => s.Mode == AttentionMode.Causal) ? null : AttentionMasks.BuildDense(sample, device)); // the rule of model.md 2.6, one sample at a time
        }
        return new PackedAttentionMask(samples, masks);
    }

    /// <summary>
    /// Hands the masks to the caller's dispose scope, so they outlive the forward pass that built them (activation
    /// checkpointing recomputes layers in the backward pass and needs them then).
    /// </summary>
    public void MoveToOuterDisposeScope()
    {
        foreach (torch.Tensor? mask in _masks) mask?.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (torch.Tensor? mask in _masks) mask?.Dispose();
        _masks.Clear();
    }
}
