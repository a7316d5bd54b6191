using Bagel.Training.Checkpoints;
using Bagel.Training.Options;

namespace Bagel.Training.Recipes;

/// <summary>
/// Where a run reads each artifact from, as the reference's startup decides it (training.md 5.2): with
/// <c>finetune_from_hf</c> the configs, tokenizer and <c>ae.safetensors</c> come from <c>model_path</c> (weights then
/// come from <c>resume_from</c>); otherwise the parts come from <c>llm_path</c>, <c>vit_path</c> and <c>vae_path</c>.
/// </summary>
/// <param name="TokenizerFolder">The Qwen2 tokenizer folder: <c>model_path</c> with finetune_from_hf, else <c>llm_path</c>.</param>
/// <param name="LlmConfigFile"><c>model_path/llm_config.json</c> with finetune_from_hf, else <c>llm_path/config.json</c>.</param>
/// <param name="LlmWeights">The Qwen2 weights folder (<c>llm_path</c>); null with finetune_from_hf.</param>
/// <param name="VitConfigFile"><c>model_path/vit_config.json</c> or <c>vit_path/config.json</c>; null without visual_und.</param>
/// <param name="VitWeights">The SigLIP weights folder (<c>vit_path</c>); null with finetune_from_hf or without visual_und.</param>
/// <param name="VaeFile"><c>model_path/ae.safetensors</c> with finetune_from_hf, else <c>vae_path</c>; null without visual_gen.</param>
/// <param name="DatasetConfigFile">The dataset mix YAML (<c>dataset_config_file</c>).</param>
/// <param name="DatasetInfoFile">The dataset registry (<c>dataset_info_file</c>, default <c>dataset_info.yaml</c> beside the mix).</param>
public sealed record RecipePaths(string TokenizerFolder, string LlmConfigFile, string? LlmWeights, string? VitConfigFile, string? VitWeights,
    string? VaeFile, string DatasetConfigFile, string DatasetInfoFile)
{
    /// <summary>The released model's LLM config inside <c>model_path</c>.</summary>
    public const string LlmConfigFileName = "llm_config.json";

    /// <summary>The released model's ViT config inside <c>model_path</c>.</summary>
    public const string VitConfigFileName = "vit_config.json";

    /// <summary>The released model's VAE weights inside <c>model_path</c>.</summary>
    public const string VaeFileName = "ae.safetensors";

    /// <summary>A Hugging Face model folder's config.</summary>
    public const string HuggingFaceConfigFileName = "config.json";

    /// <summary>The registry looked up beside <c>dataset_config_file</c> when <c>dataset_info_file</c> is empty.</summary>
    public const string DefaultDatasetInfoFileName = "dataset_info.yaml";

    /// <summary>Resolves every path of <paramref name="configuration"/> (nothing is checked here; see <see cref="Check"/>).</summary>
    public static RecipePaths Resolve(TrainingConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        (ModelOptions model, DataOptions data, TrainingOptions training) = (configuration.Model, configuration.Data, configuration.Training);
        bool hf = training.FinetuneFromHf;
        string mix = Path.GetFullPath(data.DatasetConfigFile);
        string info = string.IsNullOrWhiteSpace(data.DatasetInfoFile)
            ? Path.Combine(Path.GetDirectoryName(mix) ?? ".", DefaultDatasetInfoFileName)
            : Path.GetFullPath(data.DatasetInfoFile);
        return new RecipePaths(
            TokenizerFolder: Path.GetFullPath(hf ? model.ModelPath : model.LlmPath),
            LlmConfigFile: Path.GetFullPath(hf ? Path.Combine(model.ModelPath, LlmConfigFileName) : Path.Combine(model.LlmPath, HuggingFaceConfigFileName)),
            LlmWeights: hf ? null : Path.GetFullPath(model.LlmPath),
            VitConfigFile: !training.VisualUnd ? null
                : Path.GetFullPath(hf ? Path.Combine(model.ModelPath, VitConfigFileName) : Path.Combine(model.VitPath, HuggingFaceConfigFileName)),
            VitWeights: hf || !training.VisualUnd ? null : Path.GetFullPath(model.VitPath),
            VaeFile: !training.VisualGen ? null : Path.GetFullPath(hf ? Path.Combine(model.ModelPath, VaeFileName) : model.VaePath),
            DatasetConfigFile: mix,
            DatasetInfoFile: info);
    }

    /// <summary>
    /// Every missing file or folder of the run, each naming its flag and path; empty when all are there. Also fails
    /// a <c>finetune_from_hf</c> run whose weights would come from nowhere (our check: the reference would silently
    /// train the randomly initialised model).
    /// </summary>
    public IReadOnlyList<string> Check(TrainingConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        (ModelOptions model, DataOptions data, TrainingOptions training) = (configuration.Model, configuration.Data, configuration.Training);
        var failures = new List<string>();
        bool hf = training.FinetuneFromHf;
        string folderFlag = hf ? "model_path" : "llm_path";
        if (!Directory.Exists(TokenizerFolder))
            failures.Add($"'{folderFlag}' {TokenizerFolder} does not exist; it must hold the Qwen2 {(hf ? "release (llm_config.json, tokenizer, ae.safetensors)" : "model (config.json, weights, tokenizer)")}.");
        else
        {
            if (!HasTokenizer(TokenizerFolder))
                failures.Add($"'{folderFlag}' {TokenizerFolder} has no tokenizer files (tokenizer.json, or vocab.json + merges.txt); copy the Qwen2 tokenizer files into it.");
            if (!File.Exists(LlmConfigFile))
                failures.Add($"'{folderFlag}' {TokenizerFolder} has no {Path.GetFileName(LlmConfigFile)} (the language model's config).");
            if (LlmWeights is not null && !HasSafeTensors(LlmWeights))
                failures.Add($"'llm_path' {LlmWeights} has no .safetensors weights (model.safetensors or a sharded index).");
        }
        if (VitConfigFile is not null)
        {
            string vitFolder = Path.GetDirectoryName(VitConfigFile)!;
            string flag = hf ? "model_path" : "vit_path";
            if (!hf && !Directory.Exists(vitFolder))
                failures.Add($"'vit_path' {vitFolder} does not exist; visual_und needs the SigLIP folder (or pass --visual_und False).");
            else if (Directory.Exists(vitFolder) && !File.Exists(VitConfigFile))
                failures.Add($"'{flag}' {vitFolder} has no {Path.GetFileName(VitConfigFile)} (the SigLIP config); visual_und needs it (or pass --visual_und False).");
            if (VitWeights is not null && Directory.Exists(VitWeights) && !HasSafeTensors(VitWeights))
                failures.Add($"'vit_path' {VitWeights} has no .safetensors weights (model.safetensors or a sharded index).");
        }
        if (VaeFile is not null && !File.Exists(VaeFile))
            failures.Add(hf
                ? $"'model_path' {Path.GetDirectoryName(VaeFile)} has no {VaeFileName}; visual_gen needs the VAE (or pass --visual_gen False)."
                : $"'vae_path' {VaeFile} does not exist; visual_gen needs the FLUX VAE weights (or pass --visual_gen False).");
        if (!File.Exists(DatasetConfigFile))
            failures.Add($"'dataset_config_file' {DatasetConfigFile} does not exist.");
        if (!File.Exists(DatasetInfoFile))
            failures.Add(string.IsNullOrWhiteSpace(data.DatasetInfoFile)
                ? $"'dataset_info_file' is not set, so the dataset registry is looked up beside 'dataset_config_file' {DatasetConfigFile}, at {DatasetInfoFile}, which does not exist; write it there or pass --dataset_info_file."
                : $"'dataset_info_file' {DatasetInfoFile} does not exist (the dataset registry for 'dataset_config_file' {DatasetConfigFile}).");
        if (!string.IsNullOrWhiteSpace(training.ValidationConfigFile) && !File.Exists(training.ValidationConfigFile))
            failures.Add($"'validation_config_file' {Path.GetFullPath(training.ValidationConfigFile)} does not exist (leave it empty to train without validation).");
        if (hf && !HasWeightsSource(training))
            failures.Add($"finetune_from_hf builds a randomly initialised model whose weights come from 'resume_from', but resume_from {(training.ResumeFrom is null ? "is not set" : $"{Path.GetFullPath(training.ResumeFrom)} does not exist")}"
                + (training.AutoResume ? $" and 'checkpoint_dir' {Path.GetFullPath(training.CheckpointDir)} has no checkpoint" : "")
                + $"; pass --resume_from {model.ModelPath} --resume_model_only --finetune_from_ema (the reference's fine-tune recipe).");
        return failures;
    }

    private static bool HasTokenizer(string folder) =>
        File.Exists(Path.Combine(folder, "tokenizer.json")) || (File.Exists(Path.Combine(folder, "vocab.json")) && File.Exists(Path.Combine(folder, "merges.txt")));

    private static bool HasSafeTensors(string folder) =>
        Directory.EnumerateFiles(folder, "*.safetensors").Any() || Directory.EnumerateFiles(folder, "*.safetensors.index.json").Any();

    private static bool HasWeightsSource(TrainingOptions training) =>
        (training.ResumeFrom is { } from && Directory.Exists(from))
        || (training.AutoResume && CheckpointCatalog.FindLatest(training.CheckpointDir) is not null);
}
