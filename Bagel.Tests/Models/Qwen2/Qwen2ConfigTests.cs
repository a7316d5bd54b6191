using Bagel.Models.Qwen2;

namespace Bagel.Tests.Models.Qwen2;

public sealed class Qwen2ConfigTests
{
    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public void The_Qwen2_5_7B_config_json_parses_to_its_sizes()
    {
        string path = SharedData.Require("tokenizer/qwen2.5/config.json");
        Qwen2Config config = Qwen2Config.FromFile(path);
        Assert.Equal(3584, config.HiddenSize);
        Assert.Equal(28, config.NumHiddenLayers);
        Assert.Equal(28, config.NumAttentionHeads);
        Assert.Equal(4, config.NumKeyValueHeads);
        Assert.Equal(18944, config.IntermediateSize);
        Assert.Equal(152064, config.VocabSize);
        Assert.Equal(1_000_000.0, config.RopeTheta);
        Assert.Equal(1e-6, config.RmsNormEps);
        Assert.Equal(32768, config.MaxPositionEmbeddings);
        Assert.Equal("silu", config.HiddenAct);
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal(128, config.HeadDim);
        Assert.Equal(Qwen2LayerModule.Qwen2DecoderLayer, config.LayerModule);
    }

    [Fact]
    public void Bagel_overrides_set_layer_module_qk_norm_untied_head_and_freeze_und()
    {
        Qwen2Config file = Qwen2Config.FromJson(
            """{"hidden_size":896,"num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"intermediate_size":4864,"vocab_size":151936,"tie_word_embeddings":true,"rope_theta":1000000.0}""",
            "qwen2.5-0.5b");
        Assert.True(file.TieWordEmbeddings);
        Qwen2Config bagel = file.WithBagelOverrides(freezeUnd: true);
        Assert.Equal(Qwen2LayerModule.Qwen2MoTDecoderLayer, bagel.LayerModule);
        Assert.True(bagel.QkNorm);
        Assert.False(bagel.TieWordEmbeddings);
        Assert.True(bagel.FreezeUnd);
        Assert.True(bagel.UseMoe);
        Assert.Equal(64, bagel.HeadDim);
    }

    [Fact]
    public void Bagel_fields_in_the_file_are_read()
    {
        Qwen2Config config = Qwen2Config.FromJson(
            """{"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10,"layer_module":"Qwen2MoEDecoderLayer","qk_norm":false,"freeze_und":true}""",
            "llm_config.json");
        Assert.Equal(Qwen2LayerModule.Qwen2MoEDecoderLayer, config.LayerModule);
        Assert.False(config.QkNorm);
        Assert.True(config.FreezeUnd);
        Assert.Equal(4, config.NumKeyValueHeads); // absent → num_attention_heads
    }

    [Theory]
    [InlineData("""{"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10}""", "'hidden_size'")]
    [InlineData("""{"hidden_size":"32","num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10}""", "'hidden_size' must be an integer")]
    [InlineData("""{"hidden_size":30,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10}""", "not a multiple of num_attention_heads")]
    [InlineData("""{"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"intermediate_size":8,"vocab_size":10,"hidden_act":"gelu"}""", "num_key_value_heads 3; hidden_act 'gelu'")]
    [InlineData("""{"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10,"rope_scaling":{"type":"yarn"}}""", "'rope_scaling'")]
    [InlineData("""{"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10,"layer_module":"Qwen2Foo"}""", "'Qwen2Foo'")]
    [InlineData("""{"hidden_size":32,""", "not valid JSON")]
    public void Bad_configs_fail_with_the_source_and_key_named(string json, string fragment)
    {
        var error = Assert.Throws<Qwen2ConfigException>(() => Qwen2Config.FromJson(json, "my/config.json"));
        Assert.Contains("my/config.json", error.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_is_reported_by_path()
    {
        var error = Assert.Throws<Qwen2ConfigException>(() => Qwen2Config.FromFile("/nonexistent/qwen"));
        Assert.Contains("/nonexistent/qwen", error.Message, StringComparison.Ordinal);
    }
}
