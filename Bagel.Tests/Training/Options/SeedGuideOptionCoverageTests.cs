using System.Reflection;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// Every option the seed guide (../shared/reference/seed-guide.md, "Training entry point and the knobs people use")
/// names is a flag the command line knows, and the options whose effect is tested in this folder have a test named
/// after them.
/// </summary>
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

    /// <summary>Options whose effect the recipe tests (building the model, tokenizer, VAE and data from the flags) prove.</summary>
    private static readonly string[] EffectTestedByRecipes =
    [
        "llm_path", "vae_path", "vit_path", "layer_module", "dataset_config_file", "freeze_llm", "freeze_vit", "freeze_vae",
        "use_flex", "resume_model_only", "finetune_from_ema", "finetune_from_hf", "results_dir",
    ];

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
        IEnumerable<string> mine = SeedGuideFlags.Concat(DistributedFlags).Except(EffectTestedByRecipes).Except(["num_worker"]).Distinct();

        foreach (string flag in mine)
            Assert.True(testNames.Any(n => n.Contains(Pascal(flag), StringComparison.Ordinal)), $"no SeedGuide* test is named after --{flag} ({Pascal(flag)})");
    }

    private static string Pascal(string flag) => string.Concat(flag.Split('_').Select(w => char.ToUpperInvariant(w[0]) + w[1..]));
}
