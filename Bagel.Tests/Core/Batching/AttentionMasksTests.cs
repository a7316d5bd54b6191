using System.Text.Json;
using Bagel.Core.Batching;

namespace Bagel.Tests.Core.Batching;

public sealed class AttentionMasksTests
{
    public static TheoryData<int> Layouts() => [.. Enumerable.Range(0, Fixture.GetProperty("masks").GetArrayLength())];

    private static readonly JsonElement Fixture = JsonDocument.Parse(File.ReadAllText(
        Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Attention", "masks.json"))).RootElement;

    [Theory]
    [MemberData(nameof(Layouts))]
    public void DenseMaskAndRuleEqualTheReferencesMask(int index)
    {
        JsonElement entry = Fixture.GetProperty("masks")[index];
        int[] lens = [.. entry.GetProperty("split_lens").EnumerateArray().Select(e => e.GetInt32())];
        AttentionMode[] modes = [.. entry.GetProperty("attn_modes").EnumerateArray().Select(e => Enum.Parse<AttentionMode>(e.GetString()!, ignoreCase: true))];
        var sample = SampleLayout.FromSplits([.. lens.Zip(modes, (l, m) => new AttentionSplit(l, m))]);
        string[] expected = [.. entry.GetProperty("rows").EnumerateArray().Select(e => e.GetString()!)];

        using var mask = AttentionMasks.BuildDense(sample);
        bool[] values = mask.data<bool>().ToArray();
        for (int q = 0; q < sample.Length; q++)
        {
            string row = new([.. Enumerable.Range(0, sample.Length).Select(k => values[q * sample.Length + k] ? '1' : '0')]);
            Assert.Equal(expected[q], row);
            string ruled = new([.. Enumerable.Range(0, sample.Length).Select(k => AttentionMasks.Allows(sample, q, k) ? '1' : '0')]);
            Assert.Equal(expected[q], ruled);
        }
    }
}
