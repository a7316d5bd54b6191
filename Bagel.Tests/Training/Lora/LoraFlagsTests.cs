using Bagel.Models.Lora;
using Bagel.Training.Lora;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Lora;

/// <summary>The <c>--lora_*</c> flags: parsed with the reference's, validated, documented and turned into options.</summary>
public sealed class LoraFlagsTests
{
    [Fact]
    public void TheFlagsBindIntoLoraOptions()
    {
        TrainingConfiguration config = ReferenceCommandLine.Bind(["--lora_rank", "4", "--lora_alpha", "8", "--lora_dropout", "0.1", "--lora_targets", "llm_gen", "--global_seed", "7"]);
        Assert.True(LoraFlags.Enabled(config.Training));
        LoraOptions options = LoraFlags.ToOptions(config.Training);
        Assert.Equal((4, 8.0, 0.1, 7L), (options.Rank, options.Alpha, options.Dropout, options.InitSeed));
        Assert.Equal([LoraTargets.GenerationExpert], options.TargetModules);
        Assert.Equal(["q_proj_moe_gen", "mlp_moe_gen.up_proj"], LoraTargets.Parse(" q_proj_moe_gen, mlp_moe_gen.up_proj "));
        Assert.Equal(["regex:vae2llm|llm2vae"], LoraTargets.Parse("regex:vae2llm|llm2vae"));
        Assert.False(LoraFlags.Enabled(ReferenceCommandLine.Bind([]).Training)); // off by default: full training as the reference
        foreach (string flag in new[] { "lora_rank", "lora_alpha", "lora_dropout", "lora_targets" })
            Assert.Contains("Our extension", ReferenceFlagHelp.Describe(flag), StringComparison.Ordinal);
    }

    [Fact]
    public void BadValuesAreReportedTogetherWithTheFlagNames()
    {
        TrainingConfiguration config = ReferenceCommandLine.Bind(["--lora_rank", "4", "--lora_dropout", "1.5", "--lora_alpha", "0", "--lora_targets", "regex:("]);
        IReadOnlyList<string> failures = config.Validate();
        Assert.Contains(failures, f => f.Contains("lora_dropout: 1.5", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("lora_alpha: 0", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("not a valid regular expression", StringComparison.Ordinal));
        Assert.Contains(ReferenceCommandLine.Bind(["--lora_rank", "-1"]).Validate(), f => f.Contains("lora_rank", StringComparison.Ordinal));
    }
}
