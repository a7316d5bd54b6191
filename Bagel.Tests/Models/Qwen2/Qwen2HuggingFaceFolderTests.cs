using System.Text.Json.Nodes;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Models.Qwen2;
using Bagel.Tests.Infrastructure;
using TorchSharp;

namespace Bagel.Tests.Models.Qwen2;

/// <summary>
/// Loads the Hugging Face-layout folder (config.json + two shards + index) that the fixture script writes from the
/// reference model's own state dict, and checks the outputs against the reference run and the errors for bad folders.
/// </summary>
public sealed class Qwen2HuggingFaceFolderTests
{
    private static string Folder => Path.Combine(Qwen2Fixtures.Directory, "hf_mot");

    private static Qwen2ForCausalLM Load(string folder, out StateDictLoadReport report)
    {
        var model = new Qwen2ForCausalLM(Qwen2Config.FromFile(Path.Combine(folder, "config.json")));
        report = Qwen2CheckpointLoader.LoadHuggingFace(model, folder, copyInitMoe: false, cancellationToken: TestContext.Current.CancellationToken);
        return model;
    }

    [Fact]
    public void TheShardedFolderLoadsWithNoMissingKeysAndGivesTheReferenceOutput()
    {
        using var scope = torch.NewDisposeScope();
        using Qwen2ForCausalLM model = Load(Folder, out StateDictLoadReport report);
        Assert.True(report.IsExactMatch, $"missing [{string.Join(", ", report.MissingKeys)}], unexpected [{string.Join(", ", report.UnexpectedKeys)}]");
        Assert.Equal(Qwen2LayerModule.Qwen2MoTDecoderLayer, model.Config.LayerModule);

        Dictionary<string, torch.Tensor> inputs = Qwen2Fixtures.Read("inputs.safetensors");
        torch.Tensor expected = Qwen2Fixtures.Read("expected_mot.safetensors")["output"];
        var text = model.Model.EmbedTokens.forward(inputs["text_ids"]);
        long length = inputs["position_ids"].shape[0];
        var packed = torch.zeros(length, text.shape[1]).index_copy(0, inputs["text_indexes"], text).index_copy(0, inputs["vision_indexes"], inputs["vision_embeds"]);
        using var noGrad = torch.no_grad();
        var output = model.forward(new Qwen2PackedInput(packed, Qwen2Fixtures.Samples(), inputs["position_ids"], inputs["und_indexes"], inputs["gen_indexes"]));
        double scale = expected.abs().max().item<float>();
        double error = (output - expected).abs().max().item<float>();
        Assert.True(error <= 1e-5 * scale, $"max error {error} vs scale {scale}");
    }

    [Theory]
    [InlineData("renamed")]
    [InlineData("missing")]
    [InlineData("misshapen")]
    public void BadFoldersGiveOneErrorNamingTheTensors(string fault)
    {
        using var dir = new TempDirectory("bagel-hf-");
        foreach (string file in Directory.GetFiles(Folder)) File.Copy(file, Path.Combine(dir.Path, Path.GetFileName(file)));
        const string Shard = "model-00001-of-00002.safetensors";
        string target = fault == "misshapen" ? "model.embed_tokens.weight" : "model.layers.0.mlp.gate_proj.weight";
        string renamed = target + "_renamed";
        using (var reader = SafeTensorsReader.Open(Path.Combine(Folder, Shard)))
        {
            var tensors = new List<PendingTensor>();
            foreach (SafeTensorInfo info in reader.Tensors)
            {
                if (info.Name == target && fault == "missing") continue;
                string name = info.Name == target && fault == "renamed" ? renamed : info.Name;
                torch.Tensor tensor = info.Name == target && fault == "misshapen" ? torch.zeros(33, 32) : reader.ReadTensor(info.Name);
                tensors.Add(PendingTensor.From(name, tensor));
            }
            SafeTensorsWriter.WriteFile(Path.Combine(dir.Path, Shard), tensors, cancellationToken: TestContext.Current.CancellationToken);
        }
        string index = Path.Combine(dir.Path, "model.safetensors.index.json");
        var json = JsonNode.Parse(File.ReadAllText(index))!;
        var map = json["weight_map"]!.AsObject();
        map.Remove(target);
        if (fault == "renamed") map[renamed] = Shard;
        if (fault == "misshapen") map[target] = Shard;
        File.WriteAllText(index, json.ToJsonString());

        var ex = Assert.Throws<Qwen2CheckpointException>(() => Load(dir.Path, out _).Dispose());
        switch (fault)
        {
            case "renamed":
                Assert.Contains("1 unknown tensor(s) [" + renamed + "]", ex.Message, StringComparison.Ordinal);
                Assert.Contains("1 missing tensor(s) [model.layers.0.mlp.gate_proj.weight]", ex.Message, StringComparison.Ordinal);
                break;
            case "missing":
                Assert.Contains("1 missing tensor(s) [model.layers.0.mlp.gate_proj.weight]", ex.Message, StringComparison.Ordinal);
                break;
            default:
                Assert.Contains("misshapen", ex.Message, StringComparison.Ordinal);
                Assert.Contains("model.embed_tokens.weight", ex.Message, StringComparison.Ordinal);
                break;
        }
    }
}
