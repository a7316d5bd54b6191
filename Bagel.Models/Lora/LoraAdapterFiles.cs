using System.Globalization;
using System.Text;
using System.Text.Json;
using Bagel.Core.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Lora;

/// <summary>
/// PEFT's adapter folder and the merged checkpoint. <see cref="Save"/> writes <c>adapter_config.json</c> (the fields
/// PEFT's <c>LoraConfig</c> reads, sorted as PEFT writes them) and <c>adapter_model.safetensors</c> (float32,
/// <c>base_model.model.&lt;module path&gt;.lora_A.weight</c> [r, in] and <c>.lora_B.weight</c> [out, r]), so the
/// adapters load with <c>PeftModel.from_pretrained</c> on the reference's model. <see cref="SaveMerged"/> writes the
/// base model's full state dict with every adapter folded in (<c>W + scale·B·A</c>) under the reference's names.
/// Every file is written atomically.
/// </summary>
public static class LoraAdapterFiles
{
    /// <summary>PEFT's config file name.</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>PEFT's weights file name.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>Writes the PEFT folder (created if needed).</summary>
    /// <param name="adapters">The adapters (attached or detached, e.g. the EMA copy).</param>
    /// <param name="folder">The folder to write <see cref="ConfigFileName"/> and <see cref="WeightsFileName"/> to.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    public static void Save(LoraAdapterSet adapters, string folder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        Dictionary<string, Tensor> state = adapters.state_dict();
        SafeTensorsWriter.WriteFile(Path.Combine(folder, WeightsFileName),
            state.Select(kv => PendingTensor.From(kv.Key, kv.Value)), new Dictionary<string, string> { ["format"] = "pt" }, cancellationToken);
        WriteAtomically(Path.Combine(folder, ConfigFileName), ConfigJson(adapters));
    }

    /// <summary>The <c>adapter_config.json</c> text for <paramref name="adapters"/> (PEFT's field names, sorted, indent 2).</summary>
    public static string ConfigJson(LoraAdapterSet adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        LoraOptions o = adapters.Options;
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = w => WritePattern(w, o.AlphaPattern.Select(p => (p.Key, p.Value))),
            ["auto_mapping"] = w => w.WriteNullValue(),
            ["base_model_name_or_path"] = w => WriteStringOrNull(w, o.BaseModelNameOrPath),
            ["bias"] = w => w.WriteStringValue("none"),
            ["corda_config"] = w => w.WriteNullValue(),
            ["eva_config"] = w => w.WriteNullValue(),
            ["exclude_modules"] = w => w.WriteNullValue(),
            ["fan_in_fan_out"] = w => w.WriteBooleanValue(false),
            ["inference_mode"] = w => w.WriteBooleanValue(true),
            ["init_lora_weights"] = w => w.WriteBooleanValue(true),
            ["layer_replication"] = w => w.WriteNullValue(),
            ["layers_pattern"] = w => w.WriteNullValue(),
            ["layers_to_transform"] = w => w.WriteNullValue(),
            ["loftq_config"] = w => { w.WriteStartObject(); w.WriteEndObject(); },
            ["lora_alpha"] = w => WriteNumber(w, o.Alpha),
            ["lora_bias"] = w => w.WriteBooleanValue(false),
            ["lora_dropout"] = w => w.WriteNumberValue(o.Dropout),
            ["megatron_config"] = w => w.WriteNullValue(),
            ["megatron_core"] = w => w.WriteStringValue("megatron.core"),
            ["modules_to_save"] = w => w.WriteNullValue(),
            ["peft_type"] = w => w.WriteStringValue("LORA"),
            ["r"] = w => w.WriteNumberValue(o.Rank),
            ["rank_pattern"] = w => WritePattern(w, o.RankPattern.Select(p => (p.Key, (double)p.Value))),
            ["revision"] = w => w.WriteNullValue(),
            ["target_modules"] = w =>
            {
                object targets = LoraTargets.ToPeftTargetModules(o.TargetModules, adapters.TargetPaths);
                if (targets is string regex) w.WriteStringValue(regex);
                else
                {
                    w.WriteStartArray();
                    foreach (string t in (string[])targets) w.WriteStringValue(t);
                    w.WriteEndArray();
                }
            },
            ["target_parameters"] = w => w.WriteNullValue(),
            ["task_type"] = w => w.WriteNullValue(),
            ["trainable_token_indices"] = w => w.WriteNullValue(),
            ["use_dora"] = w => w.WriteBooleanValue(false),
            ["use_qalora"] = w => w.WriteBooleanValue(false),
            ["use_rslora"] = w => w.WriteBooleanValue(o.UseRsLora),
        };
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            foreach ((string name, Action<Utf8JsonWriter> value) in fields)
            {
                writer.WritePropertyName(name);
                value(writer);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Reads <c>adapter_config.json</c> from <paramref name="folder"/> into options.</summary>
    /// <exception cref="LoraException">The file is missing or not a plain LoRA config this SDK can apply (the message
    /// names the file and field).</exception>
    public static LoraOptions ReadConfig(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string file = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(file)) throw new LoraException($"{file} does not exist; an adapter folder holds {ConfigFileName} and {WeightsFileName}.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllText(file));
        }
        catch (JsonException e)
        {
            throw new LoraException($"{file} is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            string? Str(string name) => root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            bool Flag(string name) => root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.True;
            if (Str("peft_type") != "LORA") throw new LoraException($"{file}: peft_type is '{Str("peft_type")}', not 'LORA'.");
            foreach (string unsupported in new[] { "fan_in_fan_out", "use_dora", "lora_bias", "use_qalora" })
                if (Flag(unsupported)) throw new LoraException($"{file}: {unsupported} is true; only plain LoRA (false) is supported.");
            if (Str("bias") is { } bias && bias != "none") throw new LoraException($"{file}: bias is '{bias}'; only 'none' is supported.");
            if (root.TryGetProperty("modules_to_save", out JsonElement save) && save.ValueKind == JsonValueKind.Array && save.GetArrayLength() > 0)
                throw new LoraException($"{file}: modules_to_save is not supported yet (unfinished); only lora_A/lora_B adapters load.");
            if (!root.TryGetProperty("r", out JsonElement r) || !r.TryGetInt32(out int rank)) throw new LoraException($"{file}: 'r' (the rank) is missing or not an integer.");
            if (!root.TryGetProperty("lora_alpha", out JsonElement a) || a.ValueKind != JsonValueKind.Number) throw new LoraException($"{file}: 'lora_alpha' is missing or not a number.");
            double dropout = root.TryGetProperty("lora_dropout", out JsonElement d) && d.ValueKind == JsonValueKind.Number ? d.GetDouble() : 0;
            IReadOnlyList<string> targets = root.TryGetProperty("target_modules", out JsonElement t) ? t.ValueKind switch
            {
                JsonValueKind.String => [LoraTargets.RegexPrefix + t.GetString()],
                JsonValueKind.Array => [.. t.EnumerateArray().Select(e => e.GetString() ?? "")],
                _ => throw new LoraException($"{file}: target_modules must be a string or a list of strings."),
            } : throw new LoraException($"{file}: target_modules is missing.");
            var options = new LoraOptions
            {
                Rank = rank, Alpha = a.GetDouble(), Dropout = dropout, TargetModules = targets, UseRsLora = Flag("use_rslora"),
                RankPattern = ReadPattern(root, "rank_pattern", file).Select(p => new KeyValuePair<string, int>(p.Key, (int)p.Value)).ToList(),
                AlphaPattern = ReadPattern(root, "alpha_pattern", file),
                BaseModelNameOrPath = Str("base_model_name_or_path"),
            };
            IReadOnlyList<string> problems = options.Validate();
            if (problems.Count > 0) throw new LoraException($"{file}: " + string.Join(" ", problems));
            return options;
        }
    }

    /// <summary>Loads <c>adapter_model.safetensors</c> into <paramref name="adapters"/>: every adapter tensor must be in
    /// the file with the same shape and the file may hold nothing else (checked before anything is loaded).</summary>
    /// <exception cref="LoraException">Missing, unexpected or misshapen tensors, named.</exception>
    public static void LoadWeights(LoraAdapterSet adapters, string folderOrFile)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentException.ThrowIfNullOrEmpty(folderOrFile);
        string file = Directory.Exists(folderOrFile) ? Path.Combine(folderOrFile, WeightsFileName) : folderOrFile;
        if (!File.Exists(file)) throw new LoraException($"{file} does not exist.");
        Dictionary<string, Tensor> target = adapters.state_dict();
        using ISafeTensorsSource source = SafeTensorsCheckpoint.Open(file);
        var unexpected = new List<string>();
        var misshapen = new List<string>();
        foreach (SafeTensorInfo info in source.Tensors)
        {
            if (!target.TryGetValue(info.Name, out Tensor? destination)) unexpected.Add(info.Name);
            else if (!destination.shape.SequenceEqual(info.Shape))
                misshapen.Add($"{info.Name}: file [{string.Join(", ", info.Shape)}], adapter [{string.Join(", ", destination.shape)}]");
        }
        List<string> missing = [.. target.Keys.Where(k => !source.Contains(k)).Order(StringComparer.Ordinal)];
        if (unexpected.Count + misshapen.Count + missing.Count > 0)
            throw new LoraException($"{file} does not fit the adapters (rank {adapters.Options.Rank}, {adapters.Layers.Count} adapted modules): "
                + $"{missing.Count} missing [{string.Join(", ", missing.Take(5))}], {unexpected.Count} unexpected [{string.Join(", ", unexpected.Take(5))}], "
                + $"{misshapen.Count} misshapen [{string.Join("; ", misshapen.Take(5))}]. Attach with the options of its {ConfigFileName}.");
        using var noGrad = no_grad();
        foreach ((string name, Tensor destination) in target) source.CopyInto(name, destination);
    }

    /// <summary>Reads a PEFT folder's config, attaches adapters to <paramref name="model"/> with it and loads the weights.</summary>
    /// <param name="model">The base model (e.g. a <c>BagelModel</c> loaded from the checkpoint the adapters were trained on).</param>
    /// <param name="folder">The adapter folder.</param>
    /// <param name="freezeBase">Freeze the base (default true).</param>
    /// <returns>The attached adapters.</returns>
    public static LoraAdapterSet Attach(nn.Module model, string folder, bool freezeBase = true)
    {
        LoraAdapterSet adapters = LoraAdapterSet.Attach(model, ReadConfig(folder), freezeBase);
        try
        {
            LoadWeights(adapters, folder);
            return adapters;
        }
        catch
        {
            adapters.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes the base model's whole state dict to <paramref name="path"/> with every adapter folded in, under the
    /// reference's names (a <c>model.safetensors</c> or <c>ema.safetensors</c> the strict BAGEL loader reads). The live
    /// model is not changed. Floating-point tensors are written in <paramref name="dtype"/>, float32 by default (the
    /// dtype of the reference's training checkpoints), whatever the base's dtype: over a float32 base the values are
    /// those <see cref="LoraAdapterSet.Merge"/> would write; over the bf16 base of a bf16 LoRA run each merged weight is
    /// <c>W + scale·B·A</c> computed in float32 from the bf16 W, so the delta is not rounded to bf16.
    /// </summary>
    /// <param name="adapters">The attached adapters.</param>
    /// <param name="path">The file to write (its folder is created).</param>
    /// <param name="weightsFrom">Adapter weights to fold in instead of the attached ones (e.g. the EMA copy); same layout.</param>
    /// <param name="dtype">The dtype of the floating-point tensors in the file; null: float32. <c>BFloat16</c> halves
    /// the file and rounds each merged weight once (it is computed in float32).</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    public static void SaveMerged(LoraAdapterSet adapters, string path, LoraAdapterSet? weightsFrom = null, ScalarType? dtype = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentException.ThrowIfNullOrEmpty(path);
        nn.Module model = adapters.BaseModel ?? throw new LoraException("The adapter set is detached; merge with the set attached to the base model and pass this one as weightsFrom.");
        if (weightsFrom is not null && weightsFrom.Layers.Count != adapters.Layers.Count)
            throw new LoraException($"weightsFrom has {weightsFrom.Layers.Count} adapters, the attached set {adapters.Layers.Count}.");
        Dictionary<string, LoraLinear> byWeight = adapters.Layers.Select((l, i) => (Key: l.Path + ".weight", Layer: l, Index: i))
            .ToDictionary(x => x.Key, x => x.Layer);
        Dictionary<string, LoraLinear?> donors = adapters.Layers.Select((l, i) => (l.Path + ".weight", weightsFrom?.Layers[i]))
            .ToDictionary(x => x.Item1, x => x.Item2);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        ScalarType floats = dtype ?? ScalarType.Float32;
        ScalarType merging = floats == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32; // round once, when written
        SafeTensorDType? Stored(Tensor t) => t.is_floating_point() ? SafeTensorDTypes.FromScalarType(floats) : null;
        IEnumerable<PendingTensor> tensors = model.state_dict().Select(kv => byWeight.TryGetValue(kv.Key, out LoraLinear? layer)
            ? new PendingTensor(SafeTensorsEntry.For(kv.Key, kv.Value, Stored(kv.Value)), () => layer.MergedWeight(donors[kv.Key], merging))
            : PendingTensor.From(kv.Key, kv.Value, Stored(kv.Value)));
        SafeTensorsWriter.WriteFile(path, tensors, new Dictionary<string, string> { ["format"] = "pt" }, cancellationToken);
    }

    private static List<KeyValuePair<string, double>> ReadPattern(JsonElement root, string name, string file)
    {
        if (!root.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null) return [];
        if (e.ValueKind != JsonValueKind.Object) throw new LoraException($"{file}: {name} must be an object of pattern → number.");
        return [.. e.EnumerateObject().Select(p => p.Value.ValueKind == JsonValueKind.Number
            ? new KeyValuePair<string, double>(p.Name, p.Value.GetDouble())
            : throw new LoraException($"{file}: {name}['{p.Name}'] is not a number."))];
    }

    private static void WritePattern(Utf8JsonWriter writer, IEnumerable<(string Key, double Value)> pattern)
    {
        writer.WriteStartObject();
        foreach ((string key, double value) in pattern)
        {
            writer.WritePropertyName(key);
            WriteNumber(writer, value);
        }
        writer.WriteEndObject();
    }

    /// <summary>Integral values as JSON integers (PEFT types <c>lora_alpha</c> and ranks as int).</summary>
    private static void WriteNumber(Utf8JsonWriter writer, double value)
    {
        if (value == Math.Floor(value) && Math.Abs(value) < 1e15) writer.WriteNumberValue((long)value);
        else writer.WriteNumberValue(value);
    }

    private static void WriteStringOrNull(Utf8JsonWriter writer, string? value)
    {
        if (value is null) writer.WriteNullValue();
        else writer.WriteStringValue(value);
    }

    private static void WriteAtomically(string path, string text)
    {
        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(Encoding.UTF8.GetBytes(text));
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
