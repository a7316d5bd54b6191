using Bagel.Core.Batching;
using Bagel.Models.Attention;
using TorchSharp;

namespace Bagel.Tests.Models.Attention;

public sealed class PackedScaledDotProductAttentionTests
{
    private const int Heads = 4, KvHeads = 2, HeadDim = 8;

    public static TheoryData<int> Seeds => [1, 2, 3, 4];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_packs_match_the_dense_reference_forward_and_backward(int seed)
    {
        IReadOnlyList<SampleLayout> samples = RandomPack(new Random(seed));
        AssertMatchesNaive(samples, seed, torch.float64, 1e-10);
    }

    [Fact]
    public void Every_three_split_mode_combination_in_one_pack_matches_in_float32()
    {
        AttentionMode[] modes = [AttentionMode.Causal, AttentionMode.Full, AttentionMode.Noise];
        List<SampleLayout> samples = [];
        int length = 1;
        foreach (AttentionMode a in modes)
            foreach (AttentionMode b in modes)
                foreach (AttentionMode c in modes)
                    samples.Add(SampleLayout.FromSplits(new(length++ % 3 + 1, a), new(2, b), new(length % 2 + 1, c)));
        AssertMatchesNaive(samples, 11, torch.float32, 1e-5);
    }

    [Fact]
    public void Mismatched_lengths_are_rejected_before_any_kernel_runs()
    {
        using var mask = PackedAttentionMask.Build([SampleLayout.FromSplits(new AttentionSplit(3, AttentionMode.Causal))], torch.CPU);
        using var q = torch.zeros(4, Heads, HeadDim);
        using var kv = torch.zeros(4, KvHeads, HeadDim);
        var error = Assert.Throws<ArgumentException>(() => PackedScaledDotProductAttention.Forward(q, kv, kv, mask));
        Assert.Contains("pack of 3 tokens", error.Message, StringComparison.Ordinal);
    }

    private static void AssertMatchesNaive(IReadOnlyList<SampleLayout> samples, int seed, torch.ScalarType dtype, double tolerance)
    {
        using var scope = torch.NewDisposeScope();
        long n = samples.Sum(s => (long)s.Length);
        var generator = new torch.Generator((ulong)seed);
        torch.Tensor Leaf(long heads) => torch.randn([n, heads, HeadDim], dtype, generator: generator).requires_grad_(true);
        var (q, k, v) = (Leaf(Heads), Leaf(KvHeads), Leaf(KvHeads));
        var (q2, k2, v2) = (q.detach().clone().requires_grad_(true), k.detach().clone().requires_grad_(true), v.detach().clone().requires_grad_(true));
        var probe = torch.randn([n, Heads * HeadDim], dtype, generator: generator);

        using var mask = PackedAttentionMask.Build(samples, torch.CPU);
        var packed = PackedScaledDotProductAttention.Forward(q, k, v, mask);
        var naive = NaivePackedAttention.Attend(q2, k2, v2, NaivePackedAttention.DenseMask(samples));
        (packed * probe).sum().backward();
        (naive * probe).sum().backward();

        AssertClose(naive, packed, tolerance, "output");
        AssertClose(q2.grad!, q.grad!, tolerance, "dq");
        AssertClose(k2.grad!, k.grad!, tolerance, "dk");
        AssertClose(v2.grad!, v.grad!, tolerance, "dv");
    }

    private static List<SampleLayout> RandomPack(Random random)
    {
        var samples = new List<SampleLayout>();
        int count = random.Next(2, 6);
        for (int s = 0; s < count; s++)
        {
            var splits = new AttentionSplit[random.Next(1, 6)];
            for (int i = 0; i < splits.Length; i++)
                splits[i] = new AttentionSplit(random.Next(1, 7), (AttentionMode)random.Next(0, 3));
            samples.Add(SampleLayout.FromSplits(splits));
        }
        return samples;
    }

    private static void AssertClose(torch.Tensor expected, torch.Tensor actual, double tolerance, string what)
    {
        double scale = Math.Max(expected.abs().max().to(torch.float64).item<double>(), 1e-12);
        double error = (expected - actual).abs().max().to(torch.float64).item<double>();
        Assert.True(error <= tolerance * scale, $"{what}: max |diff| {error:E3} > {tolerance:E0} x {scale:E3}");
    }
}
