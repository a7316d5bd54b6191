using Bagel.Data.Images;

namespace Bagel.Tests.Data.Images;

public class FlattenedPositionIdsTests
{
    public static TheoryData<int> Cases() => new(Enumerable.Range(0, ImageFixtures.Load("patches.json").GetProperty("position_ids").GetArrayLength()));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Extrapolate_and_interpolate_match_the_reference(int index)
    {
        var item = ImageFixtures.Load("patches.json").GetProperty("position_ids")[index];
        int h = item.GetProperty("height").GetInt32(), w = item.GetProperty("width").GetInt32();
        int p = item.GetProperty("patch_size").GetInt32(), m = item.GetProperty("max_num_patches_per_side").GetInt32();
        long[] extrapolate = item.GetProperty("extrapolate").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        long[] interpolate = item.GetProperty("interpolate").EnumerateArray().Select(v => v.GetInt64()).ToArray();

        Assert.Equal(extrapolate, FlattenedPositionIds.Extrapolate(h, w, p, m));
        Assert.Equal(interpolate, FlattenedPositionIds.Interpolate(h, w, p, m));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(70)]
    public void Interpolate_buckets_match_the_reference_for_every_patch_count_up_to_150(int grid)
    {
        var rows = ImageFixtures.Load("patches.json").GetProperty("interpolate_buckets").GetProperty(grid.ToString());
        var mismatches = new List<string>();
        int n = 1;
        foreach (var row in rows.EnumerateArray())
        {
            long[] expected = row.EnumerateArray().Select(v => v.GetInt64() * grid).ToArray();
            long[] actual = FlattenedPositionIds.Interpolate(n, 1, 1, grid);
            if (!expected.SequenceEqual(actual)) mismatches.Add($"n={n}");
            n++;
        }
        Assert.Empty(mismatches);
    }

    [Fact]
    public void Extrapolate_is_row_times_grid_plus_column()
    {
        Assert.Equal([0L, 1, 2, 70, 71, 72], FlattenedPositionIds.Extrapolate(28, 42, 14, 70));
    }
}
