using Bagel.Data.Images;
using TorchSharp;

namespace Bagel.Tests.Data.Images;

public class VitPatchifyTests
{
    public static TheoryData<int> Cases() => new(Enumerable.Range(0, ImageFixtures.Load("patches.json").GetProperty("patchify").GetArrayLength()));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Patchify_matches_the_reference_layout(int index)
    {
        var item = ImageFixtures.Load("patches.json").GetProperty("patchify")[index];
        int c = item.GetProperty("channels").GetInt32(), h = item.GetProperty("height").GetInt32(), w = item.GetProperty("width").GetInt32();
        int p = item.GetProperty("patch_size").GetInt32();
        Bagel.Core.Native.TorchRuntime.EnsureLoaded();
        using var image = torch.arange(c * h * w, dtype: torch.float32).reshape(c, h, w);

        using var patches = VitPatchify.Patchify(image, p);

        Assert.Equal(item.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray(), patches.shape);
        float[] expected = item.GetProperty("values").EnumerateArray().Select(v => (float)v.GetInt64()).ToArray();
        Assert.Equal(expected, patches.data<float>().ToArray());
    }

    [Fact]
    public void A_size_that_is_not_a_multiple_of_the_patch_is_rejected()
    {
        Bagel.Core.Native.TorchRuntime.EnsureLoaded();
        using var image = torch.zeros(3, 14, 15);
        var error = Assert.Throws<ArgumentException>(() => VitPatchify.Patchify(image));
        Assert.Contains("14x15", error.Message);
        using var flat = torch.zeros(14, 14);
        Assert.Throws<ArgumentException>(() => VitPatchify.Patchify(flat));
    }
}
