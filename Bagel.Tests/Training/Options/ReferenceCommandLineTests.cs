using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

public sealed class ReferenceCommandLineTests
{
    [Fact]
    public void TheFineTuneRecipeOfTrainMdParses()
    {
        TrainingConfiguration configuration = ReferenceCommandLine.Bind([
            "--model_path", "hf/BAGEL-7B-MoT", "--resume-from", "hf/BAGEL-7B-MoT", "--resume_model_only", "True", "--finetune_from_ema", "True",
            "--finetune_from_hf", "True", "--auto_resume", "True", "--max_latent_size", "64", "--lr", "2e-5", "--log_every=1",
            "--num_worker", "1", "--expected_num_tokens", "10240", "--max_num_tokens", "11520", "--max_num_tokens_per_sample", "10240",
        ]);

        Assert.Equal("hf/BAGEL-7B-MoT", configuration.Training.ResumeFrom);
        Assert.True(configuration.Training.ResumeModelOnly && configuration.Training.FinetuneFromEma && configuration.Training.FinetuneFromHf && configuration.Training.AutoResume);
        Assert.Equal(64, configuration.Model.MaxLatentSize);
        Assert.Equal(2e-5, configuration.Training.Lr);
        Assert.Equal(1, configuration.Training.LogEvery);
        Assert.Equal(1, configuration.Data.NumWorkers); // argparse prefix abbreviation
        Assert.Equal((10240, 11520, 10240), (configuration.Training.ExpectedNumTokens, configuration.Data.MaxNumTokens, configuration.Data.MaxNumTokensPerSample));
        Assert.Empty(configuration.Validate());
    }

    [Theory]
    [InlineData(new[] { "--use_flex" }, true)]
    [InlineData(new[] { "--use-flex", "false" }, false)]
    [InlineData(new[] { "--use_flex=Y" }, true)]
    [InlineData(new[] { "--use_flex", "--lr", "1" }, true)]
    public void BoolFlagsAloneMeanTrueOrTakeAValue(string[] args, bool expected) =>
        Assert.Equal(expected, ReferenceCommandLine.Bind(args).Training.UseFlex);

    [Fact]
    public void FlagsWhoseDefaultIsTrueHaveANoForm()
    {
        TrainingConfiguration configuration = ReferenceCommandLine.Bind(["--no_visual_und", "--no-freeze-vae"]);

        Assert.False(configuration.Training.VisualUnd);
        Assert.False(configuration.Training.FreezeVae);
        Assert.True(configuration.Training.VisualGen);
    }

    [Fact]
    public void NegativeNumbersAreValuesAndTheLastRepeatWins()
    {
        TrainingConfiguration configuration = ReferenceCommandLine.Bind(["--vit_select_layer", "-1", "--total_steps", "5", "--total_steps", "7"]);

        Assert.Equal(-1, configuration.Model.VitSelectLayer);
        Assert.Equal(7, configuration.Training.TotalSteps);
    }

    [Fact]
    public void EveryBadArgumentIsReportedAtOnce()
    {
        var exception = Assert.Throws<InvalidTrainingOptionsException>(() => ReferenceCommandLine.Parse(
            ["--frobnicate", "3", "--max", "1", "--visual_gen", "maybe", "stray", "--lr"]));

        Assert.Equal(5, exception.Failures.Count);
        Assert.Contains(exception.Failures, f => f.Contains("Unknown flag '--frobnicate'", StringComparison.Ordinal));
        Assert.Contains(exception.Failures, f => f.Contains("ambiguous", StringComparison.Ordinal) && f.Contains("--max_latent_size", StringComparison.Ordinal));
        Assert.Contains(exception.Failures, f => f.Contains("'maybe'", StringComparison.Ordinal));
        Assert.Contains(exception.Failures, f => f.Contains("'stray'", StringComparison.Ordinal));
        Assert.Contains(exception.Failures, f => f.Contains("'--lr' needs a value", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryFlagOfTheThreeClassesIsKnown() =>
        Assert.Equal(18 + 8 + 45 + 1 + 3 + 1 + 1 + 4 + 2, ReferenceCommandLine.FlagNames.Count); // + dataset_info_file, the three validation flags, special_token_loss, precision, the four lora flags and the two validation-image flags (ours)
}
