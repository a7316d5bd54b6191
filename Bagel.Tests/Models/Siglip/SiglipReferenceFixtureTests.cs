using System.Text.Json;
using Bagel.Models.Siglip;
using TorchSharp;

namespace Bagel.Tests.Models.Siglip;

/// <summary>Our tower against the reference's own siglip_navit.py run on the same weights and packed images (f32).</summary>
public sealed class SiglipReferenceFixtureTests
{
    private const double OutputTolerance = 1e-5;   // relative to the largest |value|, f32 on CPU
    private const double GradientTolerance = 1e-4;

    [Fact]
    public void Forward_and_gradients_match_the_reference()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new SiglipVisionModel(SiglipFixtures.Config());
        var report = SiglipCheckpointLoader.LoadBagel(model, Path.Combine(SiglipFixtures.Directory, "weights.safetensors"),
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(report.IsExactMatch);
        Dictionary<string, torch.Tensor> io = SiglipFixtures.Read("io.safetensors");

        var output = model.Forward(io["packed_vit_tokens"], io["packed_vit_position_ids"], io["vit_token_seqlens"]);
        (output * io["probe"]).sum().backward();

        SiglipFixtures.AssertClose(io["output"], output.detach(), OutputTolerance, "output");
        SiglipFixtures.AssertClose(io["grad.patch_embedding.weight"], model.VisionModel.Embeddings.PatchEmbedding.weight!.grad!,
            GradientTolerance, "patch_embedding.weight gradient");
        SiglipFixtures.AssertClose(io["grad.layers.1.self_attn.q_proj.weight"],
            model.VisionModel.Encoder.Layers[1].SelfAttention.QProj.weight!.grad!, GradientTolerance, "layers.1 q_proj.weight gradient");
    }

    [Fact]
    public void Hugging_Face_file_with_one_more_layer_loads_converted_and_gives_the_reference_output()
    {
        using var scope = torch.NewDisposeScope();
        SiglipVisionConfig fileConfig = SiglipVisionConfig.FromFile(SiglipFixtures.Directory);
        using var model = new SiglipVisionModel(fileConfig.WithBagelOverrides());
        var report = SiglipCheckpointLoader.LoadHuggingFace(model, Path.Combine(SiglipFixtures.Directory, "hf_model.safetensors"),
            cancellationToken: TestContext.Current.CancellationToken);
        Dictionary<string, torch.Tensor> io = SiglipFixtures.Read("io.safetensors");

        var output = model.Forward(io["packed_vit_tokens"], io["packed_vit_position_ids"], io["vit_token_seqlens"]);

        Assert.Equal(3, fileConfig.NumHiddenLayers);
        Assert.Empty(report.MissingKeys);
        Assert.Contains(SiglipCheckpointKeys.PatchEmbeddingWeight, report.LoadedKeys);
        Assert.Contains("vision_model.encoder.layers.2.self_attn.q_proj.weight", report.IgnoredKeys);
        Assert.Contains("vision_model.head.probe", report.IgnoredKeys);
        SiglipFixtures.AssertClose(io["output"], output, OutputTolerance, "output after HF load");
    }

    [Fact]
    public void State_dict_names_and_shapes_equal_the_reference()
    {
        using var model = new SiglipVisionModel(SiglipFixtures.Config());
        using var stream = File.OpenRead(Path.Combine(SiglipFixtures.Directory, "state_dict.json"));
        using var document = JsonDocument.Parse(stream);
        // Order differs by construction: the reference re-registers patch_embedding when it converts the conv.
        List<string> expected = [.. document.RootElement.EnumerateObject()
            .Select(entry => $"{entry.Name} [{string.Join(", ", entry.Value.EnumerateArray().Select(d => d.GetInt64()))}]").Order(StringComparer.Ordinal)];
        List<string> actual = [.. model.state_dict()
            .Select(entry => $"{SiglipCheckpointKeys.ToBagel(entry.Key)} [{string.Join(", ", entry.Value.shape)}]").Order(StringComparer.Ordinal)];
        Assert.Equal(expected, actual);
    }
}
