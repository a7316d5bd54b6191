using Bagel.Tests.Infrastructure;
using Bagel.Training.Options;
using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Recipes;

public sealed class RecipePathsTests
{
    [Fact]
    public void FineTuningReadsConfigsTokenizerAndVaeFromModelPathAndSkipsOffBranches()
    {
        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Model.ModelPath = "/m";
        config.Training.FinetuneFromHf = true;
        config.Training.VisualUnd = false;

        RecipePaths paths = RecipePaths.Resolve(config);

        Assert.Equal("/m", paths.TokenizerFolder);
        Assert.Equal("/m/llm_config.json", paths.LlmConfigFile);
        Assert.Equal("/m/ae.safetensors", paths.VaeFile);
        Assert.Null(paths.LlmWeights);
        Assert.Null(paths.VitConfigFile);
        Assert.Null(paths.VitWeights);
    }

    [Fact]
    public void TheRegistryDefaultsToDatasetInfoYamlBesideTheMixAndTheFlagOverridesIt()
    {
        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Data.DatasetConfigFile = "/d/configs/mix.yaml";
        Assert.Equal("/d/configs/dataset_info.yaml", RecipePaths.Resolve(config).DatasetInfoFile);

        config.Data.DatasetInfoFile = "/r/registry.json";
        Assert.Equal("/r/registry.json", RecipePaths.Resolve(config).DatasetInfoFile);
    }

    [Fact]
    public void AFineTuneWithoutAWeightsSourceIsRefusedInsteadOfTrainingRandomWeights()
    {
        using var dir = new TempDirectory("bagel-paths-");
        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Model.ModelPath = dir.Path;
        config.Training.FinetuneFromHf = true;
        config.Training.ResumeFrom = Path.Combine(dir.Path, "gone");

        IReadOnlyList<string> failures = RecipePaths.Resolve(config).Check(config);

        Assert.Contains(failures, f => f.Contains("weights come from 'resume_from'", StringComparison.Ordinal) && f.Contains("gone", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("no llm_config.json", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("has no tokenizer files", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("'model_path'", StringComparison.Ordinal) && f.Contains("ae.safetensors", StringComparison.Ordinal));
    }

    [Fact]
    public void PartFoldersWithoutWeightsAreNamed()
    {
        using var dir = new TempDirectory("bagel-paths-");
        dir.File("llm/config.json", "{}");
        dir.File("llm/vocab.json", "{}");
        dir.File("llm/merges.txt", "");
        dir.File("vit/config.json", "{}");
        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Model.LlmPath = Path.Combine(dir.Path, "llm");
        config.Model.VitPath = Path.Combine(dir.Path, "vit");
        config.Training.VisualGen = false;

        IReadOnlyList<string> failures = RecipePaths.Resolve(config).Check(config);

        Assert.Contains($"'llm_path' {Path.Combine(dir.Path, "llm")} has no .safetensors weights (model.safetensors or a sharded index).", failures);
        Assert.Contains($"'vit_path' {Path.Combine(dir.Path, "vit")} has no .safetensors weights (model.safetensors or a sharded index).", failures);
        Assert.DoesNotContain(failures, f => f.Contains("vae_path", StringComparison.Ordinal));
    }
}
