using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using Bagel.Core.Batching;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Loop;
using Bagel.Tests.Training.Recipes;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using Microsoft.Extensions.Configuration;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// Every option the seed guide (../shared/reference/seed-guide.md, "Training entry point and the knobs people use")
/// names is a flag the command line knows, and the options whose effect is tested in this folder have a test named
/// after them.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // building a trainer creates the tiny model's EMA twin, which seeds torch
public sealed class SeedGuideOptionCoverageTests
{
    /// <summary>The flags the seed guide names, in its order (Model, Data, Training; <c>num_worker</c> is its abbreviation).</summary>
    public static readonly string[] SeedGuideFlags =
    [
        "llm_path", "vae_path", "vit_path", "max_latent_size", "latent_patch_size", "vit_max_num_patch_per_side",
        "text_cond_dropout_prob", "vae_cond_dropout_prob", "vit_cond_dropout_prob", "layer_module",
        "dataset_config_file", "num_workers", "prefetch_factor", "max_num_tokens_per_sample", "max_num_tokens",
        "expected_num_tokens", "max_buffer_size", "data_seed",
        "total_steps", "lr", "lr_scheduler", "warmup_steps", "ema", "max_grad_norm", "save_every",
        "visual_gen", "visual_und", "freeze_llm", "freeze_vit", "freeze_vae", "use_flex",
        "sharding_strategy", "num_shard", "log_every", "resume_from", "auto_resume", "resume_model_only",
        "finetune_from_ema", "finetune_from_hf", "results_dir", "checkpoint_dir", "num_worker",
    ];

    /// <summary>Multi-process flags: the acceptance asks for the clear message instead of an effect (cpu_offload is the third the issue names).</summary>
    private static readonly string[] DistributedFlags = ["sharding_strategy", "num_shard", "cpu_offload"];

    /// <summary>Options whose effect the recipe tests (building the model, tokenizer, VAE and data from the flags) prove, with the test that does.</summary>
    private static readonly Dictionary<string, string> EffectTestedByRecipes = new(StringComparer.Ordinal)
    {
        ["llm_path"] = nameof(BagelRecipeTests.PretrainingFromPartsLoadsTheFilesAndCopiesTheGenExpertsFromTheirUndTwins),
        ["vit_path"] = nameof(BagelRecipeTests.PretrainingFromPartsLoadsTheFilesAndCopiesTheGenExpertsFromTheirUndTwins),
        ["vae_path"] = nameof(BagelRecipeTests.VlmOnlyLoadsNoVaeAndLogsMseZero),
        ["layer_module"] = nameof(BagelRecipeTests.LayerModuleChoosesTheDecoderLayerOfTheLanguageModel),
        ["dataset_config_file"] = nameof(TrainCommandTests.AMixThatNeedsAnOffBranchOrDoesNotParseIsListedWithTheOtherProblems),
        ["freeze_llm"] = nameof(BagelRecipeTests.FreezeLlmAndFreezeVitLeaveThoseWeightsUnchangedWhileTheRestTrains),
        ["freeze_vit"] = nameof(BagelRecipeTests.FreezeLlmAndFreezeVitLeaveThoseWeightsUnchangedWhileTheRestTrains),
        ["freeze_vae"] = nameof(BagelRecipeTests.FreezeVaeOffSaysSoButTheVaeIsNeverTrained),
        ["use_flex"] = nameof(TrainCommandTests.SnakeCaseAndKebabCaseFlagsGiveTheSameRunWithTheReferenceOutputs),
        ["resume_model_only"] = nameof(BagelRecipeTests.FineTuningAReleaseStartsFromItsEmaWithWarmupAndARelaunchResumesFully),
        ["finetune_from_ema"] = nameof(BagelRecipeTests.FineTuningAReleaseStartsFromItsEmaWithWarmupAndARelaunchResumesFully),
        ["finetune_from_hf"] = nameof(BagelRecipeTests.FineTuningAReleaseStartsFromItsEmaWithWarmupAndARelaunchResumesFully),
        ["results_dir"] = nameof(TrainCommandTests.SnakeCaseAndKebabCaseFlagsGiveTheSameRunWithTheReferenceOutputs),
    };

    [Fact]
    public void EveryRecipeOptionNamesAnExistingRecipeTest()
    {
        foreach ((string flag, string test) in EffectTestedByRecipes)
        {
            Assert.Contains(flag, SeedGuideFlags);
            Assert.True(typeof(BagelRecipeTests).GetMethod(test) is not null || typeof(TrainCommandTests).GetMethod(test) is not null, $"--{flag}: no recipe test {test}");
        }
    }

    [Fact]
    public void EverySeedGuideFlagIsKnownToTheCommandLine()
    {
        foreach (string flag in SeedGuideFlags.Where(f => f != "num_worker"))
            Assert.True(ReferenceCommandLine.FlagNames.Contains(flag), $"--{flag} (seed guide) is not a flag of ReferenceCommandLine");
        Assert.Contains("cpu_offload", ReferenceCommandLine.FlagNames);

        // num_worker is not a flag of its own: the reference's argparse reads it as the unique prefix of num_workers.
        Assert.DoesNotContain("num_worker", ReferenceCommandLine.FlagNames);
        Assert.Equal("num_workers", Assert.Single(ReferenceCommandLine.Parse(["--num_worker", "1"])).Key);
    }

    [Fact]
    public void EveryOtherSeedGuideOptionHasAnEffectTestNamedAfterIt()
    {
        string[] testNames = [.. typeof(SeedGuideOptionCoverageTests).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(SeedGuideOptionCoverageTests).Namespace && t.Name.StartsWith("SeedGuide", StringComparison.Ordinal))
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttributes().Any(a => a is FactAttribute))
            .Select(m => m.Name)];
        IEnumerable<string> mine = SeedGuideFlags.Concat(DistributedFlags).Except(EffectTestedByRecipes.Keys).Except(["num_worker"]).Distinct();

        foreach (string flag in mine)
            Assert.True(testNames.Any(n => n.Contains(Pascal(flag), StringComparison.Ordinal)), $"no SeedGuide* test is named after --{flag} ({Pascal(flag)})");
    }

    private static string Pascal(string flag) => string.Concat(flag.Split('_').Select(w => char.ToUpperInvariant(w[0]) + w[1..]));

    private static async IAsyncEnumerable<PackedBatch> NoBatches([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        yield break;
    }

    [Fact]
    public void ACommandLineGivingEverySeedGuideFlagAValueBindsEachAndBuildsATrainer()
    {
        using var dir = new TempDirectory("bagel-allflags-");
        // A valid value for every flag, away from its default where one exists (latent_patch_size stays 2, which the tests' VAE data stride of 16 needs; the multi-process flags their single-process values).
        Dictionary<string, string> values = new(StringComparer.Ordinal)
        {
            ["llm_path"] = "my/llm", ["vae_path"] = "my/ae.safetensors", ["vit_path"] = "my/vit", ["max_latent_size"] = "64",
            ["latent_patch_size"] = "2", ["vit_max_num_patch_per_side"] = "40", ["text_cond_dropout_prob"] = "0.2",
            ["vae_cond_dropout_prob"] = "0.25", ["vit_cond_dropout_prob"] = "0.35", ["layer_module"] = "Qwen2DecoderLayer",
            ["dataset_config_file"] = "my/mix.yaml", ["num_workers"] = "1", ["prefetch_factor"] = "3", ["max_num_tokens_per_sample"] = "10240",
            ["max_num_tokens"] = "11520", ["expected_num_tokens"] = "10240", ["max_buffer_size"] = "5", ["data_seed"] = "7",
            ["total_steps"] = "40", ["lr"] = "2e-5", ["lr_scheduler"] = "cosine", ["warmup_steps"] = "10", ["ema"] = "0.99",
            ["max_grad_norm"] = "0.5", ["save_every"] = "20", ["visual_gen"] = "True", ["visual_und"] = "False", ["freeze_llm"] = "True",
            ["freeze_vit"] = "True", ["freeze_vae"] = "False", ["use_flex"] = "True", ["sharding_strategy"] = "NO_SHARD", ["num_shard"] = "1",
            ["cpu_offload"] = "False", ["log_every"] = "1", ["resume_from"] = Path.Combine(dir.Path, "released"), ["auto_resume"] = "True",
            ["resume_model_only"] = "True", ["finetune_from_ema"] = "True", ["finetune_from_hf"] = "True", ["results_dir"] = dir.Path,
            ["checkpoint_dir"] = Path.Combine(dir.Path, "checkpoints"),
        };
        Assert.Equal(SeedGuideFlags.Except(["num_worker"]).Append("cpu_offload").Order(StringComparer.Ordinal), values.Keys.Order(StringComparer.Ordinal));

        TrainingConfiguration config = ReferenceCommandLine.Bind([.. values.SelectMany(v => new[] { "--" + v.Key, v.Value })]);
        using var model = new TinyPackedModel(seed: 1);
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData((_, ct) => NoBatches(ct)).UseOptions(config).Build();

        foreach (var (flag, text) in values)
        {
            (object options, PropertyInfo property) = Property(trainer.Configuration, flag);
            Type type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            Assert.Equal(Convert.ChangeType(text, type, CultureInfo.InvariantCulture), property.GetValue(options));
        }
    }

    private static (object Options, PropertyInfo Property) Property(TrainingConfiguration configuration, string flag) =>
        new object[] { configuration.Model, configuration.Data, configuration.Training }
            .SelectMany(o => o.GetType().GetProperties().Select(p => (Options: o, Property: p)))
            .Single(p => p.Property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name == flag);
}
