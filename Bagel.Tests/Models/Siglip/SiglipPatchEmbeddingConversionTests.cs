using Bagel.Models.Siglip;
using TorchSharp;

namespace Bagel.Tests.Models.Siglip;

public sealed class SiglipPatchEmbeddingConversionTests
{
    [Fact]
    public void Linear_form_on_patchified_pixels_equals_the_stride_patch_convolution()
    {
        using var scope = torch.NewDisposeScope();
        const int patch = 14, outChannels = 5;
        var generator = new torch.Generator(3);
        var image = torch.randn([3, 2 * patch, 3 * patch], generator: generator);
        var convWeight = torch.randn([outChannels, 3, patch, patch], generator: generator);
        var bias = torch.randn([outChannels], generator: generator);

        var conv = torch.nn.functional.conv2d(image.unsqueeze(0), convWeight, bias, strides: [patch, patch]); // [1, out, 2, 3]
        var expected = conv[0].flatten(1).transpose(0, 1);                                                      // rows (r, c)
        var linear = torch.nn.functional.linear(SiglipFixtures.Patchify(image, patch),
            SiglipPatchEmbeddingConversion.ConvWeightToLinear(convWeight), bias);

        Assert.Equal([(long)outChannels, 3L * patch * patch], SiglipPatchEmbeddingConversion.ConvWeightToLinear(convWeight).shape);
        SiglipFixtures.AssertClose(expected, linear, 1e-5, "linear vs conv");
    }

    [Fact]
    public void Converting_a_state_dict_replaces_the_conv_weight_once()
    {
        using var scope = torch.NewDisposeScope();
        var conv = torch.arange(2 * 3 * 2 * 2, dtype: torch.float32).reshape(2, 3, 2, 2);
        var stateDict = new Dictionary<string, torch.Tensor>
        {
            [SiglipCheckpointKeys.PatchEmbeddingWeight] = conv.clone(),
            ["vision_model.embeddings.patch_embedding.bias"] = torch.zeros(2),
        };

        Assert.True(SiglipPatchEmbeddingConversion.ConvertStateDict(stateDict));
        var converted = stateDict[SiglipCheckpointKeys.PatchEmbeddingWeight];
        Assert.Equal([2L, 12L], converted.shape);
        // Element (o, ky, kx, c) of the flattened row is conv[o, c, ky, kx]: channel fastest.
        Assert.Equal(conv[1, 2, 0, 1].item<float>(), converted[1, (0 * 2 + 1) * 3 + 2].item<float>());
        Assert.Equal(conv[0, 0, 1, 0].item<float>(), converted[0, (1 * 2 + 0) * 3 + 0].item<float>());
        Assert.False(SiglipPatchEmbeddingConversion.ConvertStateDict(stateDict));
        Assert.Throws<KeyNotFoundException>(() => SiglipPatchEmbeddingConversion.ConvertStateDict(new Dictionary<string, torch.Tensor>()));
    }
}
