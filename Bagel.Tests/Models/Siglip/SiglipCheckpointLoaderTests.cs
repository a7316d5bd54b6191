using Bagel.Core.SafeTensors;
using Bagel.Models.Siglip;
using TorchSharp;

namespace Bagel.Tests.Models.Siglip;

public sealed class SiglipCheckpointLoaderTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"bagel-siglip-{Guid.NewGuid():N}");

    public SiglipCheckpointLoaderTests() => Directory.CreateDirectory(_folder);

    /// <summary>so400m's layout in miniature: a 27-layer file with the conv-shaped patch weight and a pooling head.</summary>
    private static SiglipVisionConfig TinyFileConfig => new()
    {
        HiddenSize = 8, IntermediateSize = 12, NumHiddenLayers = 27, NumAttentionHeads = 2, ImageSize = 28, PatchSize = 14,
    };

    [Fact]
    public void Hugging_Face_folder_with_27_layers_loads_into_26_with_the_patch_weight_converted()
    {
        using var scope = torch.NewDisposeScope();
        using var source = new SiglipVisionModel(TinyFileConfig with { Rope = false });
        Dictionary<string, torch.Tensor> sourceState = source.state_dict();
        WriteHuggingFaceFile(sourceState, extra: true);
        File.WriteAllText(Path.Combine(_folder, "config.json"),
            """{"hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 27, "num_attention_heads": 2, "image_size": 28, "patch_size": 14}""");

        SiglipVisionConfig config = SiglipVisionConfig.FromFile(_folder).WithBagelOverrides();
        using var model = new SiglipVisionModel(config);
        var report = SiglipCheckpointLoader.LoadHuggingFace(model, _folder, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(26, config.NumHiddenLayers);
        Assert.Empty(report.MissingKeys);
        Assert.Empty(report.UnexpectedKeys);
        Assert.Contains("vision_model.encoder.layers.26.mlp.fc2.bias", report.IgnoredKeys);
        Assert.Contains("vision_model.head.probe", report.IgnoredKeys);
        Assert.Contains("text_model.embeddings.token_embedding.weight", report.IgnoredKeys);
        foreach ((string key, torch.Tensor value) in model.state_dict())
            Assert.True(value.allclose(sourceState[key], rtol: 0, atol: 0), $"{key} differs from the file");
    }

    [Fact]
    public void A_file_lacking_a_layer_or_holding_a_misshapen_tensor_is_rejected_before_loading()
    {
        using var scope = torch.NewDisposeScope();
        using var source = new SiglipVisionModel(TinyFileConfig with { NumHiddenLayers = 3, Rope = false });
        WriteHuggingFaceFile(source.state_dict(), extra: false);
        using var tooDeep = new SiglipVisionModel(TinyFileConfig with { NumHiddenLayers = 4, Rope = false });
        using var wider = new SiglipVisionModel(TinyFileConfig with { NumHiddenLayers = 2, IntermediateSize = 16, Rope = false });

        var missing = Assert.Throws<SiglipCheckpointException>(() => SiglipCheckpointLoader.LoadHuggingFace(tooDeep, _folder, cancellationToken: TestContext.Current.CancellationToken));
        var misshapen = Assert.Throws<SiglipCheckpointException>(() => SiglipCheckpointLoader.LoadHuggingFace(wider, _folder, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("vision_model.encoder.layers.3.", missing.Message, StringComparison.Ordinal);
        Assert.Contains("mlp.fc1.weight", misshapen.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bagel_checkpoint_loads_the_vit_model_tensors_and_rejects_a_deeper_tower()
    {
        using var scope = torch.NewDisposeScope();
        string file = Path.Combine(SiglipFixtures.Directory, "weights.safetensors");
        using var model = new SiglipVisionModel(SiglipFixtures.Config());
        using var deeper = new SiglipVisionModel(SiglipFixtures.Config() with { NumHiddenLayers = 3 });

        var report = SiglipCheckpointLoader.LoadBagel(model, file, cancellationToken: TestContext.Current.CancellationToken);
        using var reader = SafeTensorsReader.Open(file);

        Assert.True(report.IsExactMatch);
        Assert.True(model.state_dict()["vision_model.post_layernorm.bias"].allclose(reader.ReadTensor("vit_model.vision_model.post_layernorm.bias"), rtol: 0, atol: 0));
        Assert.Throws<SiglipCheckpointException>(() => SiglipCheckpointLoader.LoadBagel(deeper, file, cancellationToken: TestContext.Current.CancellationToken));
    }

    private void WriteHuggingFaceFile(Dictionary<string, torch.Tensor> state, bool extra)
    {
        var tensors = new Dictionary<string, torch.Tensor>(state);
        var linear = tensors[SiglipCheckpointKeys.PatchEmbeddingWeight];
        // Inverse of the conversion: [out, (ky, kx, c)] → [out, c, ky, kx], as Hugging Face files store it.
        tensors[SiglipCheckpointKeys.PatchEmbeddingWeight] = linear.reshape(linear.shape[0], 14, 14, 3).permute(0, 3, 1, 2).contiguous();
        if (extra)
        {
            tensors["vision_model.head.probe"] = torch.ones(1, 1, 8);
            tensors["text_model.embeddings.token_embedding.weight"] = torch.ones(4, 8);
            tensors["logit_scale"] = torch.ones(1);
        }
        SafeTensorsWriter.WriteFile(Path.Combine(_folder, "model.safetensors"), tensors.Select(t => PendingTensor.From(t.Key, t.Value)));
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
