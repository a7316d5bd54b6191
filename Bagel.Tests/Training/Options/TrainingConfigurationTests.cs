using System.Reflection;
using System.Text.Json;
using Bagel.Training;
using Bagel.Training.Options;
using Microsoft.Extensions.Configuration;

namespace Bagel.Tests.Training.Options;

public sealed class TrainingConfigurationTests
{
    private static IConfiguration Config(params (string Key, string Value)[] pairs) =>
        new ConfigurationBuilder().AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value))).Build();

    [Fact]
    public void DefaultsAreTheReferencesAndValid()
    {
        TrainingConfiguration defaults = TrainingConfiguration.Defaults();

        Assert.Empty(defaults.Validate());
        Assert.Equal("hf/BAGEL-7B-MoT", defaults.Model.ModelPath);
        Assert.Equal(-2, defaults.Model.VitSelectLayer);
        Assert.Equal(0.3, defaults.Model.VaeCondDropoutProb);
        Assert.Equal(36864, defaults.Data.MaxNumTokens);
        Assert.Equal(42, defaults.Data.DataSeed);
        Assert.Equal(4396, defaults.Training.GlobalSeed);
        Assert.Null(defaults.Training.ResumeFrom);
        Assert.Equal(0.95, defaults.Training.Beta2);
        Assert.Equal(1e-15, defaults.Training.Eps);
        Assert.Equal(0.9999, defaults.Training.Ema);
        Assert.Equal("HYBRID_SHARD", defaults.Training.ShardingStrategy);
        Assert.Equal(8, defaults.Training.NumShard);
        Assert.True(defaults.Training.FreezeVae);
        Assert.True(defaults.Training.CopyInitMoe);
        Assert.False(defaults.Training.UseFlex);
    }

    [Theory]
    [InlineData(typeof(ModelOptions), 18)]
    [InlineData(typeof(DataOptions), 8 + 1)] // + dataset_info_file (ours)
    [InlineData(typeof(TrainingOptions), 45 + 5 + 4 + 2)] // + validation_config_file, validate_every, validation_batches, special_token_loss, precision, lora_rank, lora_alpha, lora_dropout, lora_targets, validation_prompts, validation_images_every (ours)
    public void EveryPropertyHasASnakeCaseKeyThatTheJsonNamingMatches(Type type, int expectedCount)
    {
        PropertyInfo[] properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance);
        Assert.Equal(expectedCount, properties.Length);
        foreach (PropertyInfo property in properties)
        {
            string? key = property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name;
            Assert.NotNull(key);
            Assert.Equal(JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name), key);
        }
    }

    [Fact]
    public void SectionedConfigurationBindsSnakeCaseKeysAndKeepsOtherDefaults()
    {
        IConfiguration configuration = Config(("model:max_latent_size", "64"), ("data:num_workers", "1"),
            ("training:lr", "2e-5"), ("training:resume_from", "/ckpt"), ("training:visual_und", "false"), ("training:use_flex", "true"));

        TrainingConfiguration bound = TrainingConfiguration.Bind(configuration);

        Assert.Equal(64, bound.Model.MaxLatentSize);
        Assert.Equal(1, bound.Data.NumWorkers);
        Assert.Equal(2e-5, bound.Training.Lr);
        Assert.Equal("/ckpt", bound.Training.ResumeFrom);
        Assert.False(bound.Training.VisualUnd);
        Assert.True(bound.Training.UseFlex);
        Assert.Equal(2000, bound.Training.WarmupSteps);
        Assert.Empty(bound.Validate());
    }

    [Fact]
    public void FlatConfigurationReadsEveryFlagFromTheRoot()
    {
        TrainingConfiguration bound = TrainingConfiguration.Bind(Config(("latent_patch_size", "4"), ("max_buffer_size", "7"), ("total_steps", "40")), flat: true);

        Assert.Equal(4, bound.Model.LatentPatchSize);
        Assert.Equal(7, bound.Data.MaxBufferSize);
        Assert.Equal(40, bound.Training.TotalSteps);
    }

    [Fact]
    public void EveryBadValueIsReportedAtOnceNamingItsKey()
    {
        TrainingConfiguration bad = TrainingConfiguration.Bind(Config(("model:vae_cond_dropout_prob", "1.5"), ("model:layer_module", "Nope"),
            ("data:max_num_tokens", "100"), ("training:lr", "-1"), ("training:lr_scheduler", "linear"), ("training:beta2", "1")));

        var exception = Assert.Throws<InvalidTrainingOptionsException>(() => bad.ValidateOrThrow());

        Assert.Equal(6, exception.Failures.Count);
        foreach (string key in new[] { "vae_cond_dropout_prob", "layer_module", "max_num_tokens_per_sample", "'lr'", "lr_scheduler", "beta2" })
            Assert.Contains(exception.Failures, f => f.Contains(key, StringComparison.Ordinal));
        Assert.Contains("6 invalid option(s)", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MultiProcessFlagsSayTheyNeedDistributedTraining()
    {
        var options = new TrainingOptions { ShardingStrategy = "NO_SHARD", NumShard = 4, NumReplicate = 2, CpuOffload = true };

        IReadOnlyList<string> failures = (TrainingConfiguration.Defaults() with { Training = options }).Validate();

        Assert.Equal(2, failures.Count); // num_replicate 2 and cpu_offload without a sharding strategy; num_shard 4 is valid
        Assert.All(failures, f => Assert.Contains(TrainingOptionsValidator.NeedsDistributed, f, StringComparison.Ordinal));
    }

    [Fact]
    public void SingleProcessValuesOfShardingFlagsAreAccepted()
    {
        var options = new TrainingOptions { ShardingStrategy = "NO_SHARD", NumShard = 1, BackwardPrefetch = "BACKWARD_POST", UseFlex = true };

        Assert.Empty((TrainingConfiguration.Defaults() with { Training = options }).Validate());
    }

    [Fact]
    public void AnUnknownShardingNameIsAnInvalidValueNotADistributedOne()
    {
        var options = new TrainingOptions { ShardingStrategy = "SHARD_EVERYTHING", BackwardPrefetch = "NO_PREFETCH" };

        IReadOnlyList<string> failures = (TrainingConfiguration.Defaults() with { Training = options }).Validate();

        Assert.Equal(2, failures.Count);
        Assert.All(failures, f => Assert.Contains("must be one of", f, StringComparison.Ordinal));
    }

    [Fact]
    public void TurningOffBothBranchesIsRejected()
    {
        var options = new TrainingOptions { VisualGen = false, VisualUnd = false };

        IReadOnlyList<string> failures = (TrainingConfiguration.Defaults() with { Training = options }).Validate();

        Assert.Contains(failures, f => f.Contains("visual_gen", StringComparison.Ordinal) && f.Contains("visual_und", StringComparison.Ordinal));
    }

    [Fact]
    public void AValueTheBinderCannotConvertBecomesAnOptionsError()
    {
        var exception = Assert.Throws<InvalidTrainingOptionsException>(() => TrainingConfiguration.Bind(Config(("training:lr", "abc"))));

        Assert.Contains("TrainingOptions", exception.Failures[0], StringComparison.Ordinal);
    }

    [Fact]
    public void ResolvedConfigurationSerializesUnderTheFlagNames()
    {
        string json = JsonSerializer.Serialize(TrainingConfiguration.Defaults(), TrainingJsonContext.Default.TrainingConfiguration);

        Assert.Contains("\"vit_max_num_patch_per_side\": 70", json, StringComparison.Ordinal);
        Assert.Contains("\"gradient_accumulation_steps\": 1", json, StringComparison.Ordinal);
        Assert.Contains("\"prefer_buffer_before\": 16384", json, StringComparison.Ordinal);
    }
}
