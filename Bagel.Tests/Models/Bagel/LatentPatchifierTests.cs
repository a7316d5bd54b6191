using Bagel.Core.Batching;
using Bagel.Models.Bagel;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Checks <see cref="LatentPatchifier"/> against the patchified latents the reference's Bagel.forward fed to
/// vae2llm (all timesteps −inf, so x_t = x0 exactly).</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class LatentPatchifierTests
{
    [Fact]
    public void PatchifyPacked_PaddedLatentRows_EqualReferenceExactly()
    {
        using Tensor padded = GenerationPathFixture.Read("fixture.padded_latent");
        using Tensor expected = GenerationPathFixture.Read("fixture.x0");
        LatentGrid[] grids = GenerationPathFixture.Grids();
        using Tensor first = padded[0];
        using Tensor second = padded[1];
        using Tensor tokens = LatentPatchifier.PatchifyPacked([first, second], grids, GenerationPathFixture.PatchSize);
        Assert.Equal(expected.shape, tokens.shape);
        Assert.True(expected.allclose(tokens, rtol: 0, atol: 0), "patchified latents differ from the reference's");
    }

    [Fact]
    public void Patchify_FeatureIndexIsPatchPositionTimesChannelsPlusChannel()
    {
        // latent[c, y, x] = 100·c + 10·y + x over a 2×2 token grid (4×4 latent, 3 channels).
        using Tensor latent = arange(3 * 4 * 4, dtype: ScalarType.Float32).reshape(3, 4, 4);
        using Tensor values = latent.clone();
        for (int c = 0; c < 3; c++) for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) values[c, y, x] = 100 * c + 10 * y + x;
        using Tensor tokens = LatentPatchifier.Patchify(values, new LatentGrid(2, 2));
        Assert.Equal([4L, 12], tokens.shape);
        // Token (row 1, col 0), patch pixel (py 1, px 0), channel 2 → latent y = 3, x = 0: 200 + 30 + 0.
        Assert.Equal(230f, tokens[1 * 2 + 0, (1 * 2 + 0) * 3 + 2].item<float>());
        // Token (row 0, col 1), (py 0, px 1), channel 1 → y = 0, x = 3: 100 + 3.
        Assert.Equal(103f, tokens[1, (0 * 2 + 1) * 3 + 1].item<float>());
    }

    [Fact]
    public void Unpatchify_InvertsPatchify()
    {
        using Tensor latent = randn(4, 6, 8);
        var grid = new LatentGrid(3, 4);
        using Tensor tokens = LatentPatchifier.Patchify(latent, grid);
        using Tensor back = LatentPatchifier.Unpatchify(tokens, grid, channels: 4);
        Assert.True(latent.allclose(back, rtol: 0, atol: 0));
    }

    [Fact]
    public void Patchify_LatentSmallerThanGrid_Throws()
    {
        using Tensor latent = zeros(4, 4, 4);
        var error = Assert.Throws<ArgumentException>(() => LatentPatchifier.Patchify(latent, new LatentGrid(2, 3)));
        Assert.Contains("2×3", error.Message);
    }
}
