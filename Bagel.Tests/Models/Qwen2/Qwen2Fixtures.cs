using System.Text.Json;
using Bagel.Core.Batching;
using Bagel.Core.SafeTensors;
using Bagel.Models.Qwen2;
using TorchSharp;

namespace Bagel.Tests.Models.Qwen2;

/// <summary>The committed reference fixtures of Bagel.Tests/Fixtures/Qwen2 (see its README) and small configs.</summary>
internal static class Qwen2Fixtures
{
    public static string Directory { get; } = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Qwen2");

    public static JsonElement Layout()
    {
        using var stream = File.OpenRead(Path.Combine(Directory, "layout.json"));
        using var document = JsonDocument.Parse(stream);
        return document.RootElement.Clone();
    }

    /// <summary>The fixture's tiny config with a given layer kind.</summary>
    public static Qwen2Config Config(Qwen2LayerModule layerModule, bool freezeUnd = false)
    {
        JsonElement config = Layout().GetProperty("config");
        return Qwen2Config.FromJson(config.GetRawText(), "layout.json") with { LayerModule = layerModule, FreezeUnd = freezeUnd };
    }

    public static IReadOnlyList<SampleLayout> Samples() =>
        [.. Layout().GetProperty("samples").EnumerateArray().Select(sample => SampleLayout.FromSplits(
            [.. sample.EnumerateArray().Select(split => new AttentionSplit(split[0].GetInt32(), ParseMode(split[1].GetString()!)))]))];

    public static Dictionary<string, torch.Tensor> Read(string fileName)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(Path.Combine(Directory, fileName));
        return reader.Tensors.ToDictionary(t => t.Name, t => reader.ReadTensor(t.Name));
    }

    /// <summary>A small config for unit tests (hidden 16, 2 layers, 4 heads, 2 kv heads).</summary>
    public static Qwen2Config Tiny(Qwen2LayerModule layerModule = Qwen2LayerModule.Qwen2MoTDecoderLayer, bool qkNorm = true) => new()
    {
        HiddenSize = 16,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        IntermediateSize = 24,
        VocabSize = 40,
        RopeTheta = 1_000_000,
        LayerModule = layerModule,
        QkNorm = qkNorm,
    };

    private static AttentionMode ParseMode(string mode) => mode switch
    {
        "causal" => AttentionMode.Causal,
        "full" => AttentionMode.Full,
        "noise" => AttentionMode.Noise,
        _ => throw new InvalidDataException($"Unknown attention mode '{mode}' in layout.json."),
    };
}
