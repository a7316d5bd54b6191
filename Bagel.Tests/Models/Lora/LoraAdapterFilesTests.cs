using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Bagel.Core.Batching;
using Bagel.Models.Bagel;
using Bagel.Models.Lora;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Lora;

/// <summary>PEFT's adapter folder, read back with a parser of its own, and the merged reference-layout checkpoint.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class LoraAdapterFilesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A plain safetensors reader: 8-byte little-endian header length, the JSON header, then the data block.</summary>
    private static (Dictionary<string, (string DType, long[] Shape, long Begin, long End)> Tensors, Dictionary<string, string> Metadata, byte[] Data) ParseSafetensors(string file)
    {
        byte[] bytes = File.ReadAllBytes(file);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0, 8));
        using JsonDocument header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength));
        var tensors = new Dictionary<string, (string, long[], long, long)>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                foreach (JsonProperty m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString()!;
                continue;
            }
            long[] offsets = [.. entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64())];
            tensors[entry.Name] = (entry.Value.GetProperty("dtype").GetString()!, [.. entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())], offsets[0], offsets[1]);
        }
        return (tensors, metadata, bytes[(int)(8 + headerLength)..]);
    }

    [Fact]
    public void ThePeftFolderHasPeftsKeysShapesAndConfigFields()
    {
        using BagelModel model = BagelTestModels.Model();
        var options = new LoraOptions
        {
            Rank = 4, Alpha = 16, Dropout = 0.05, TargetModules = [LoraTargets.GenerationExpert], UseRsLora = true,
            BaseModelNameOrPath = "ByteDance-Seed/BAGEL-7B-MoT",
        };
        using LoraAdapterSet adapters = LoraAdapterSet.Attach(model, options);
        LoraTestModels.RandomizeB(adapters);
        using var folder = new TempDirectory();
        LoraAdapterFiles.Save(adapters, folder.Path, Ct);
        Assert.Equal([LoraAdapterFiles.ConfigFileName, LoraAdapterFiles.WeightsFileName],
            Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // adapter_config.json: PEFT's LoraConfig fields and values.
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder.Path, LoraAdapterFiles.ConfigFileName)));
        JsonElement c = config.RootElement;
        Assert.Equal("LORA", c.GetProperty("peft_type").GetString());
        Assert.Equal(4, c.GetProperty("r").GetInt32());
        Assert.Equal(16, c.GetProperty("lora_alpha").GetInt32()); // an integer, as PEFT types it
        Assert.Equal(0.05, c.GetProperty("lora_dropout").GetDouble());
        Assert.True(c.GetProperty("use_rslora").GetBoolean());
        Assert.Equal("none", c.GetProperty("bias").GetString());
        Assert.Equal(JsonValueKind.Null, c.GetProperty("task_type").ValueKind);
        Assert.Equal("ByteDance-Seed/BAGEL-7B-MoT", c.GetProperty("base_model_name_or_path").GetString());
        Assert.False(c.GetProperty("fan_in_fan_out").GetBoolean());
        Assert.True(c.GetProperty("init_lora_weights").GetBoolean());
        Assert.True(c.GetProperty("inference_mode").GetBoolean());
        Assert.Equal(JsonValueKind.Null, c.GetProperty("modules_to_save").ValueKind);
        Assert.Equal(JsonValueKind.Null, c.GetProperty("revision").ValueKind);
        Assert.Empty(c.GetProperty("rank_pattern").EnumerateObject());
        Assert.Empty(c.GetProperty("alpha_pattern").EnumerateObject());
        Assert.False(c.GetProperty("use_dora").GetBoolean());
        Assert.Equal(LoraTargets.GenerationExpert[LoraTargets.RegexPrefix.Length..], c.GetProperty("target_modules").GetString()); // PEFT's regex form
        string[] names = [.. c.EnumerateObject().Select(p => p.Name)];
        Assert.Equal(names.Order(StringComparer.Ordinal), names); // sorted, as PEFT writes it

        // adapter_model.safetensors: base_model.model.<path>.lora_A.weight [r, in] and .lora_B.weight [out, r], F32, contiguous, values intact.
        var (tensors, metadata, data) = ParseSafetensors(Path.Combine(folder.Path, LoraAdapterFiles.WeightsFileName));
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal(2 * adapters.Layers.Count, tensors.Count);
        long expectedBegin = 0;
        foreach (var entry in tensors.OrderBy(t => t.Value.Begin)) { Assert.Equal(expectedBegin, entry.Value.Begin); expectedBegin = entry.Value.End; }
        Assert.Equal(data.Length, expectedBegin);
        Dictionary<string, Tensor> modelState = model.state_dict();
        foreach (LoraLinear layer in adapters.Layers)
        {
            Assert.Contains("_moe_gen", layer.Path, StringComparison.Ordinal);
            Tensor baseWeight = modelState[layer.Path + ".weight"]; // the path is the reference's state-dict name
            var a = tensors[$"base_model.model.{layer.Path}.lora_A.weight"];
            var b = tensors[$"base_model.model.{layer.Path}.lora_B.weight"];
            Assert.Equal("F32", a.DType);
            Assert.Equal([4L, baseWeight.shape[1]], a.Shape);
            Assert.Equal([baseWeight.shape[0], 4L], b.Shape);
            using Tensor bFromFile = torch.tensor(MemoryMarshalFloats(data, b.Begin, b.End), b.Shape);
            Assert.True(LoraTestModels.BitEqual(bFromFile, layer.WeightB));
        }

        // The config reads back into the same options.
        LoraOptions read = LoraAdapterFiles.ReadConfig(folder.Path);
        Assert.Equal((options.Rank, options.Alpha, options.Dropout, options.UseRsLora), (read.Rank, read.Alpha, read.Dropout, read.UseRsLora));
        Assert.Equal(options.TargetModules, read.TargetModules);
    }

    private static float[] MemoryMarshalFloats(byte[] data, long begin, long end)
    {
        var values = new float[(end - begin) / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan((int)begin + 4 * i, 4));
        return values;
    }

    [Fact]
    public void AdaptersLoadBackOntoAFreshBaseAndGiveTheSameOutputs()
    {
        using BagelModel model = BagelTestModels.Model();
        using PackedBatch batch = LoraTestModels.MixedBatch();
        using var folder = new TempDirectory();
        (Tensor Mse, Tensor Ce) expected;
        using (LoraAdapterSet adapters = LoraAdapterSet.Attach(model, new LoraOptions { Rank = 2, TargetModules = ["q_proj_moe_gen", "v_proj", "connector.fc2", "llm2vae"] }))
        {
            LoraTestModels.RandomizeB(adapters);
            expected = LoraTestModels.Losses(model, batch);
            LoraAdapterFiles.Save(adapters, folder.Path, Ct);
        }
        using BagelModel fresh = BagelTestModels.Model(); // same seed: the same base
        using LoraAdapterSet loaded = LoraAdapterFiles.Attach(fresh, folder.Path);
        (Tensor mse, Tensor ce) = LoraTestModels.Losses(fresh, batch);
        Assert.True(LoraTestModels.BitEqual(mse, expected.Mse));
        Assert.True(LoraTestModels.BitEqual(ce, expected.Ce));

        // A folder that does not fit is refused with the keys named.
        using BagelModel other = BagelTestModels.Model();
        using LoraAdapterSet wrong = LoraAdapterSet.Attach(other, new LoraOptions { Rank = 3, TargetModules = ["q_proj_moe_gen"] });
        var error = Assert.Throws<LoraException>(() => LoraAdapterFiles.LoadWeights(wrong, folder.Path));
        Assert.Contains("misshapen", error.Message, StringComparison.Ordinal);
        Assert.Contains("base_model.model.language_model.model.layers.0.self_attn.v_proj.lora_A.weight", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMergedCheckpointLoadsThroughTheStrictBagelLoaderAndMatchesTheAdaptedModel()
    {
        using BagelModel model = BagelTestModels.Model();
        using PackedBatch batch = LoraTestModels.MixedBatch();
        using LoraAdapterSet adapters = LoraAdapterSet.Attach(model, new LoraOptions { Rank = 4, TargetModules = [LoraTargets.AllLinear] });
        LoraTestModels.RandomizeB(adapters);
        using LoraAdapterSet ema = adapters.CreateDetachedCopy();
        ema.CopyWeightsFrom(adapters);
        LoraTestModels.RandomizeB(ema, seed: 10);
        (Tensor mse, Tensor ce) = LoraTestModels.Losses(model, batch);
        using var folder = new TempDirectory();
        string merged = Path.Combine(folder.Path, "merged", "model.safetensors");
        LoraAdapterFiles.SaveMerged(adapters, merged, cancellationToken: Ct);
        LoraAdapterFiles.SaveMerged(adapters, Path.Combine(folder.Path, "merged", "ema.safetensors"), weightsFrom: ema, cancellationToken: Ct);
        Assert.False(adapters.IsMerged); // the live model is left as it was

        using BagelModel plain = BagelTestModels.Model(seed: 99); // other random weights, overwritten by the load
        BagelCheckpointLoader.LoadBagel(plain, merged, cancellationToken: Ct);
        (Tensor mergedMse, Tensor mergedCe) = LoraTestModels.Losses(plain, batch);
        Assert.True(LoraTestModels.RelativeError(mergedMse, mse) < 1e-5);
        Assert.True(LoraTestModels.RelativeError(mergedCe, ce) < 1e-5);

        // The file holds exactly what Merge() writes into the live model.
        adapters.Merge();
        Dictionary<string, Tensor> live = model.state_dict();
        foreach ((string key, Tensor value) in plain.state_dict()) Assert.True(LoraTestModels.BitEqual(value, live[key]), key);
        adapters.Unmerge();

        // The EMA file folds in the EMA adapters.
        using BagelModel fromEma = BagelTestModels.Model(seed: 98);
        BagelCheckpointLoader.LoadBagel(fromEma, Path.Combine(folder.Path, "merged", "ema.safetensors"), cancellationToken: Ct);
        adapters.CopyWeightsFrom(ema);
        (Tensor emaMse, _) = LoraTestModels.Losses(model, batch);
        (Tensor emaFileMse, _) = LoraTestModels.Losses(fromEma, batch);
        Assert.True(LoraTestModels.RelativeError(emaFileMse, emaMse) < 1e-5);
    }

    [Fact]
    public void ConfigsThatAreNotPlainLoraAreRefusedWithTheField()
    {
        using var folder = new TempDirectory();
        string file = Path.Combine(folder.Path, LoraAdapterFiles.ConfigFileName);
        File.WriteAllText(file, """{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"], "use_dora": true}""");
        Assert.Contains("use_dora is true", Assert.Throws<LoraException>(() => LoraAdapterFiles.ReadConfig(folder.Path)).Message, StringComparison.Ordinal);
        File.WriteAllText(file, """{"peft_type": "IA3", "target_modules": ["q_proj"]}""");
        Assert.Contains("peft_type is 'IA3'", Assert.Throws<LoraException>(() => LoraAdapterFiles.ReadConfig(folder.Path)).Message, StringComparison.Ordinal);
        File.WriteAllText(file, """{"peft_type": "LORA", "lora_alpha": 16, "target_modules": ["q_proj"]}""");
        Assert.Contains("'r'", Assert.Throws<LoraException>(() => LoraAdapterFiles.ReadConfig(folder.Path)).Message, StringComparison.Ordinal);
        File.WriteAllText(file, """{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": "language_model\\..*_moe_gen", "rank_pattern": {"mlp_moe_gen": 2}}""");
        LoraOptions options = LoraAdapterFiles.ReadConfig(folder.Path);
        Assert.Equal([LoraTargets.RegexPrefix + @"language_model\..*_moe_gen"], options.TargetModules);
        Assert.Equal(2, Assert.Single(options.RankPattern).Value);
    }
}
