using Bagel.Models.Siglip;

namespace Bagel.Tests.Models.Siglip;

public sealed class SiglipCheckpointKeysTests
{
    [Theory]
    [InlineData("vision_model.encoder.layers.25.self_attn.q_proj.weight", "vision_model.encoder.layers.25.self_attn.q_proj.weight")]
    [InlineData("vision_model.encoder.layers.26.self_attn.q_proj.weight", null)]
    [InlineData("vision_model.post_layernorm.weight", "vision_model.post_layernorm.weight")]
    [InlineData("vision_model.head.attention.in_proj_weight", null)]
    [InlineData("text_model.encoder.layers.0.mlp.fc1.weight", null)]
    [InlineData("logit_scale", null)]
    public void Hugging_Face_map_keeps_the_first_26_layers_and_drops_the_rest(string key, string? expected) =>
        Assert.Equal(expected, SiglipCheckpointKeys.FromHuggingFace(26)(key));

    [Fact]
    public void Bagel_map_strips_and_adds_the_vit_model_prefix()
    {
        Assert.Equal("vision_model.embeddings.position_embedding.weight",
            SiglipCheckpointKeys.FromBagel("vit_model.vision_model.embeddings.position_embedding.weight"));
        Assert.Null(SiglipCheckpointKeys.FromBagel("connector.fc1.weight"));
        Assert.Equal("vit_model.vision_model.post_layernorm.bias", SiglipCheckpointKeys.ToBagel("vision_model.post_layernorm.bias"));
    }

    [Theory]
    [InlineData("vision_model.encoder.layers.7.mlp.fc2.bias", 7)]
    [InlineData("vision_model.encoder.layers.x.mlp.fc2.bias", null)]
    [InlineData("vision_model.embeddings.patch_embedding.weight", null)]
    public void Layer_index_is_parsed_from_encoder_keys(string key, int? expected) =>
        Assert.Equal(expected, SiglipCheckpointKeys.LayerIndex(key));
}
