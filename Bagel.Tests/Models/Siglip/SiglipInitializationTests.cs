using System.Text.Json;
using Bagel.Models.Siglip;
using TorchSharp;

namespace Bagel.Tests.Models.Siglip;

/// <summary>Our initial weights against statistics of the reference tower's own <c>_init_weights</c> (init_stats.json).</summary>
public sealed class SiglipInitializationTests
{
    [Fact]
    public void Initial_weights_follow_the_reference_rules_per_parameter()
    {
        using var scope = torch.NewDisposeScope();
        using var stream = File.OpenRead(Path.Combine(SiglipFixtures.Directory, "init_stats.json"));
        using var document = JsonDocument.Parse(stream);
        JsonElement config = document.RootElement.GetProperty("config");
        torch.manual_seed(12);
        using var model = new SiglipVisionModel(new SiglipVisionConfig
        {
            HiddenSize = config.GetProperty("hidden_size").GetInt32(),
            IntermediateSize = config.GetProperty("intermediate_size").GetInt32(),
            NumHiddenLayers = config.GetProperty("num_hidden_layers").GetInt32(),
            NumAttentionHeads = config.GetProperty("num_attention_heads").GetInt32(),
            ImageSize = config.GetProperty("image_size").GetInt32(),
            PatchSize = config.GetProperty("patch_size").GetInt32(),
            Rope = false,
        });
        Dictionary<string, torch.Tensor> state = model.state_dict();

        foreach (JsonProperty entry in document.RootElement.GetProperty("stats").EnumerateObject())
        {
            torch.Tensor ours = state[entry.Name];
            double refStd = entry.Value.GetProperty("std").GetDouble(), refMaxAbs = entry.Value.GetProperty("max_abs").GetDouble();
            double std = ours.std().item<float>(), maxAbs = ours.abs().max().item<float>();
            if (refStd == 0)
            {
                // Constant tensors (biases 0, LayerNorm weights 1) must match exactly.
                Assert.True(std == 0 && ours.mean().item<float>() == (float)entry.Value.GetProperty("mean").GetDouble(), $"{entry.Name} is not the reference's constant");
                continue;
            }
            Assert.True(Math.Abs(std - refStd) <= 0.1 * refStd, $"{entry.Name}: std {std:G4} vs reference {refStd:G4}");
            // Bounded rules (Xavier-uniform, truncated LeCun-normal) also fix the largest |value|; the position table is untruncated.
            if (!entry.Name.Contains("position_embedding", StringComparison.Ordinal))
                Assert.True(Math.Abs(maxAbs - refMaxAbs) <= 0.05 * refMaxAbs, $"{entry.Name}: max |value| {maxAbs:G4} vs reference {refMaxAbs:G4}");
        }
    }
}
