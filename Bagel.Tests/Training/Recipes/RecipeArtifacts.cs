using System.Globalization;
using Bagel.Core.StateDicts;
using Bagel.Data.Example;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Options;
using TorchSharp;

namespace Bagel.Tests.Training.Recipes;

/// <summary>
/// Tiny versions of every artifact a recipe reads, written to a temp folder at test time: a Hugging Face Qwen2 folder
/// (config.json, model.safetensors, the files of a byte-level BPE tokenizer trained on the example data's texts, so no
/// external data is needed, and its vocabulary size), a SigLIP folder, a
/// FLUX-layout ae.safetensors, the example data, and on request a BAGEL release folder (llm_config.json,
/// vit_config.json, ae.safetensors, ema.safetensors, tokenizer).
/// </summary>
internal sealed class RecipeArtifacts : IDisposable
{
    public const int MaxLatentSize = 4; // the example data's VAE images are at most 64 px = 4 latent tokens per side
    public static readonly FluxVaeConfig VaeShape = new(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159);
    private static readonly string[] TokenizerFiles = ["vocab.json", "merges.txt", "tokenizer_config.json", "tokenizer.json"];
    private static int? _vocabulary;
    private readonly TempDirectory _dir = new("bagel-recipe-");

    private RecipeArtifacts() => Tokenizer = Path.Combine(Root, "tokenizer");

    public string Root => _dir.Path;
    public string Tokenizer { get; }
    public string Llm => Path.Combine(Root, "qwen2");
    public string Vit => Path.Combine(Root, "siglip");
    public string Vae => Path.Combine(Root, "ae.safetensors");
    public string Data => Path.Combine(Root, "data");
    public string Release => Path.Combine(Root, "release");
    public string Results => Path.Combine(Root, "results");
    public int Vocabulary { get; private set; }

    /// <summary>Writes the parts, the tokenizer and the example data.</summary>
    public static async Task<RecipeArtifacts> CreateAsync()
    {
        var artifacts = new RecipeArtifacts();
        try
        {
            var data = new ExampleDataOptions { OutputFolder = artifacts.Data, Overwrite = true, MaxDegreeOfParallelism = 2 };
            Qwen2Tokenizer tokenizer = ByteLevelBpeTrainer.Train(new ExampleDataWriter(data).EnumerateTexts(), cancellationToken: TestContext.Current.CancellationToken);
            tokenizer.Save(artifacts.Tokenizer);
            artifacts.Vocabulary = _vocabulary ??= BagelSpecialTokens.Apply(tokenizer).Tokenizer.Count;
            torch.manual_seed(11);
            artifacts.WriteQwen2();
            artifacts.WriteSiglip();
            using (var vae = new FluxAutoEncoder(VaeShape)) StateDictSaver.SaveFile(vae, artifacts.Vae);
            await new ExampleDataWriter(data)
                .WriteAsync(cancellationToken: TestContext.Current.CancellationToken);
            return artifacts;
        }
        catch
        {
            artifacts.Dispose();
            throw;
        }
    }

    public string LlmConfigJson => string.Create(CultureInfo.InvariantCulture,
        $$"""{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64, "vocab_size": {{Vocabulary}}, "rope_theta": 1000000.0, "tie_word_embeddings": false}""");

    public const string VitConfigJson =
        """{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2, "image_size": 980, "patch_size": 14}""";

    /// <summary>A mix YAML with only <paramref name="groups"/> of the example mix, beside its dataset_info.yaml.</summary>
    public string Mix(params string[] groups)
    {
        string all = File.ReadAllText(Path.Combine(Data, ExampleDataLayout.MixConfigFile)).Replace("\r\n", "\n", StringComparison.Ordinal);
        IEnumerable<string> blocks = all.Split("\n\n").Select(b => string.Join('\n', b.Split('\n').Where(l => !l.StartsWith('#'))).Trim('\n'))
            .Where(b => groups.Any(g => b.StartsWith(g + ":", StringComparison.Ordinal)));
        string path = Path.Combine(Data, $"mix-{string.Join('-', groups)}.yaml");
        File.WriteAllText(path, string.Join("\n\n", blocks) + "\n");
        return path;
    }

    /// <summary>The flags of a 2-step single-worker run on tiny budgets, pre-training from the parts.</summary>
    public List<string> Flags(string results, string mix, int totalSteps = 2) =>
    [
        "--llm_path", Llm, "--vit_path", Vit, "--vae_path", Vae, "--dataset_config_file", mix,
        "--results_dir", results, "--checkpoint_dir", Path.Combine(results, "checkpoints"),
        "--num_workers", "1", "--total_steps", totalSteps.ToString(CultureInfo.InvariantCulture), "--log_every", "1", "--save_every", "1000",
        "--warmup_steps", "0", "--lr", "1e-3", "--max_latent_size", MaxLatentSize.ToString(CultureInfo.InvariantCulture),
        "--expected_num_tokens", "256", "--max_num_tokens", "384", "--max_num_tokens_per_sample", "384",
        "--prefer_buffer_before", "128", "--max_buffer_size", "8",
        "--text_cond_dropout_prob", "0", "--vae_cond_dropout_prob", "0", "--vit_cond_dropout_prob", "0",
    ];

    public static TrainingConfiguration Bind(IEnumerable<string> flags) => ReferenceCommandLine.Bind([.. flags]);

    /// <summary>
    /// Writes a BAGEL release folder: configs, tokenizer, ae.safetensors and an ema.safetensors from a randomly
    /// initialised composite (seed <paramref name="seed"/>), without the tensors <paramref name="leaveOut"/> names.
    /// </summary>
    public void WriteRelease(long seed, params string[] leaveOut)
    {
        Directory.CreateDirectory(Release);
        File.WriteAllText(Path.Combine(Release, "llm_config.json"), LlmConfigJson);
        File.WriteAllText(Path.Combine(Release, "vit_config.json"), VitConfigJson);
        File.Copy(Vae, Path.Combine(Release, "ae.safetensors"), overwrite: true);
        CopyTokenizer(Release);
        torch.manual_seed(seed);
        using BagelModel model = new(ReleaseConfig());
        StateDictSaver.SaveFile(model, Path.Combine(Release, "ema.safetensors"), new StateDictSaveOptions { KeyMap = k => leaveOut.Contains(k) ? null : k });
    }

    /// <summary>The composite a fine-tune of the release builds (MoT, both branches, the tiny sizes).</summary>
    public BagelConfig ReleaseConfig() => new()
    {
        LlmConfig = Qwen2Config.FromJson(LlmConfigJson, "llm_config.json").WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
        VitConfig = SiglipVisionConfig.FromJson(VitConfigJson, "vit_config.json").WithBagelOverrides(),
        VaeConfig = VaeShape,
        MaxLatentSize = MaxLatentSize,
    };

    public void Dispose() => _dir.Dispose();

    private void WriteQwen2()
    {
        Directory.CreateDirectory(Llm);
        File.WriteAllText(Path.Combine(Llm, "config.json"), LlmConfigJson);
        // A Hugging Face Qwen2.5 file: plain decoder layers, no QK norms, no gen experts.
        Qwen2Config config = Qwen2Config.FromFile(Llm) with { LayerModule = Qwen2LayerModule.Qwen2DecoderLayer, QkNorm = false };
        using var model = new Qwen2ForCausalLM(config);
        StateDictSaver.SaveFile(model, Path.Combine(Llm, "model.safetensors"));
        CopyTokenizer(Llm);
    }

    private void WriteSiglip()
    {
        Directory.CreateDirectory(Vit);
        File.WriteAllText(Path.Combine(Vit, "config.json"), VitConfigJson);
        using var model = new SiglipVisionModel(SiglipVisionConfig.FromFile(Vit) with { Rope = false });
        StateDictSaver.SaveFile(model, Path.Combine(Vit, "model.safetensors"));
    }

    private void CopyTokenizer(string folder)
    {
        foreach (string file in TokenizerFiles)
        {
            string source = Path.Combine(Tokenizer, file);
            if (File.Exists(source)) File.Copy(source, Path.Combine(folder, file), overwrite: true);
        }
    }
}
