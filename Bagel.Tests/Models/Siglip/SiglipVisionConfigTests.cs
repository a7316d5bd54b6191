using Bagel.Models.Siglip;

namespace Bagel.Tests.Models.Siglip;

public sealed class SiglipVisionConfigTests
{
    private const string So400m = """
        {"hidden_size": 1152, "image_size": 980, "intermediate_size": 4304, "model_type": "siglip_vision_model",
         "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14}
        """;

    [Fact]
    public void So400m_file_with_the_trainer_overrides_builds_26_layers_and_a_70x70_table()
    {
        SiglipVisionConfig file = SiglipVisionConfig.FromJson(So400m, "vit_config.json");
        SiglipVisionConfig config = file.WithBagelOverrides();

        Assert.Equal(27, file.NumHiddenLayers);
        Assert.True(file.Rope); // the reference's config default, forced false by the trainer
        Assert.Equal(26, config.NumHiddenLayers);
        Assert.False(config.Rope);
        Assert.Equal(72, config.HeadDim);
        Assert.Equal(70, config.NumPatchesPerSide);
        Assert.Equal(4900, config.NumPositions);
        Assert.Equal(588, config.PatchVectorSize);
        Assert.Equal(1e-6, config.LayerNormEps);
        Assert.Equal(SiglipVisionConfig.GeluTanhActivation, config.HiddenAct);
    }

    [Fact]
    public void Full_siglip_config_is_read_from_its_vision_config()
    {
        string json = $$"""{"model_type": "siglip", "text_config": {"hidden_size": 7}, "vision_config": {{So400m}}}""";

        SiglipVisionConfig config = SiglipVisionConfig.FromJson(json, "config.json");

        Assert.Equal(1152, config.HiddenSize);
        Assert.Equal(27, config.NumHiddenLayers);
    }

    [Theory]
    [InlineData("""{"hidden_act": "gelu"}""", "hidden_act")]
    [InlineData("""{"hidden_size": 100, "num_attention_heads": 16}""", "num_attention_heads")]
    [InlineData("""{"patch_size": "14"}""", "patch_size")]
    [InlineData("""{"model_type": "siglip"}""", "vision_config")]
    [InlineData("""{"hidden_size": 8,""", "not valid JSON")]
    public void Bad_configs_name_the_offending_field(string json, string expected)
    {
        var error = Assert.Throws<SiglipConfigException>(() => SiglipVisionConfig.FromJson(json, "bad.json"));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains("bad.json", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Layer_selection_that_leaves_nothing_and_the_rope_variant_are_rejected()
    {
        SiglipVisionConfig file = SiglipVisionConfig.FromJson(So400m, "vit_config.json");

        Assert.Throws<SiglipConfigException>(() => file.WithBagelOverrides(vitSelectLayer: -28));
        Assert.Throws<SiglipConfigException>(() => file.WithBagelOverrides(vitSelectLayer: 0));
        Assert.Throws<SiglipConfigException>(() => new SiglipVisionModel(file with { HiddenSize = 16, NumAttentionHeads = 2, NumHiddenLayers = 1 }));
    }
}
