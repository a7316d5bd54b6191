using Bagel.Core.SafeTensors;
using Bagel.Models.Siglip;
using TorchSharp;

namespace Bagel.Tests.Models.Siglip;

/// <summary>The committed reference fixtures of Bagel.Tests/Fixtures/Siglip (see its README) and small helpers.</summary>
internal static class SiglipFixtures
{
    public static string Directory { get; } = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Siglip");

    /// <summary>The fixture's "file" config (3 layers) with the trainer's override (2 layers).</summary>
    public static SiglipVisionConfig Config() => SiglipVisionConfig.FromFile(Directory).WithBagelOverrides();

    public static Dictionary<string, torch.Tensor> Read(string fileName)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(Path.Combine(Directory, fileName));
        return reader.Tensors.ToDictionary(t => t.Name, t => reader.ReadTensor(t.Name));
    }

    /// <summary>The reference's <c>patchify</c> layout: [C, H, W] → [(H/p)·(W/p), p·p·C], rows (row, col), vectors (py, px, c).</summary>
    public static torch.Tensor Patchify(torch.Tensor image, int patch)
    {
        long c = image.shape[0], h = image.shape[1] / patch, w = image.shape[2] / patch;
        return image.view(c, h, patch, w, patch).permute(1, 3, 2, 4, 0).reshape(h * w, patch * patch * c);
    }

    public static void AssertClose(torch.Tensor expected, torch.Tensor actual, double relative, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-6f);
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= relative * scale, $"{what}: max |diff| {error:E3} exceeds {relative:E0} x max |expected| {scale:E3}");
    }
}
