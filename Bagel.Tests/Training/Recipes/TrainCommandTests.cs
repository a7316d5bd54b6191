using System.Text.RegularExpressions;
using Bagel.Training.Metrics;
using Bagel.Training.Options;
using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Recipes;

/// <summary>The train command line, run in-process.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed partial class TrainCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(IReadOnlyList<string> args, TrainCommandOptions? options = null)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = await TrainCommand.RunAsync(args, stdout, stderr, options, Ct);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task SnakeCaseAndKebabCaseFlagsGiveTheSameRunWithTheReferenceOutputs()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        string mix = Path.Combine(a.Data, "example.yaml");
        string snakeResults = Path.Combine(a.Root, "snake"), kebabResults = Path.Combine(a.Root, "kebab");
        List<string> snake = [.. a.Flags(snakeResults, mix), "--use_flex"];
        List<string> kebab = [.. a.Flags(kebabResults, mix).Select(f => f.StartsWith("--", StringComparison.Ordinal) ? f.Replace('_', '-') : f), "--use-flex"];
        Assert.Contains("--max-num-tokens-per-sample", kebab);

        (int snakeExit, string snakeOut, string snakeErr) = await RunAsync(snake);
        (int kebabExit, string kebabOut, string kebabErr) = await RunAsync(kebab, new TrainCommandOptions { ShowProgress = true, ProgressInterval = TimeSpan.Zero });

        Assert.True(snakeExit == 0, snakeErr);
        Assert.True(kebabExit == 0, kebabErr);
        List<string> snakeLosses = Losses(snakeOut), kebabLosses = Losses(kebabOut);
        Assert.Equal(2, snakeLosses.Count); // the bare step lines on stdout, one per step (log_every 1)
        Assert.Equal(snakeLosses, kebabLosses);
        Assert.StartsWith("(step=0000000) Train Loss mse: ", snakeOut, StringComparison.Ordinal);
        Assert.Contains("use_flex selects nothing numerically different", snakeErr, StringComparison.Ordinal);
        Assert.Contains("use_flex selects nothing numerically different", kebabErr, StringComparison.Ordinal);
        Assert.Contains("Recipe: pre-training from parts", snakeErr, StringComparison.Ordinal);
        Assert.DoesNotContain(ProgressLineWriter.EraseLine, snakeErr, StringComparison.Ordinal);
        Assert.Contains(ProgressLineWriter.EraseLine + "[###############---------------] 1/2 steps  50.0%", kebabErr, StringComparison.Ordinal);
        Assert.Contains("] 2/2 steps 100.0%", kebabErr, StringComparison.Ordinal);

        string log = await File.ReadAllTextAsync(Path.Combine(snakeResults, "log.txt"), Ct);
        Assert.Contains("(step=0000001) Train Loss mse: ", log, StringComparison.Ordinal);
        Assert.Equal(2, (await File.ReadAllLinesAsync(Path.Combine(snakeResults, JsonlMetricSink.DefaultFileName), Ct)).Length);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(snakeResults, "tensorboard"), "events.out.tfevents.*", SearchOption.AllDirectories));
        Assert.True(Directory.Exists(Path.Combine(snakeResults, "checkpoints", "0000002")));
    }

    [Fact]
    public async Task AValidationConfigFileGivesAValidationLossPerGroupInTheLogAndTheMetrics()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        string mix = Path.Combine(a.Data, "example.yaml");
        string results = Path.Combine(a.Root, "validated");
        (int exit, _, string stderr) = await RunAsync(
            [.. a.Flags(results, mix), "--validation_config_file", mix, "--validate_every", "1", "--validation_batches", "1"]);

        Assert.True(exit == 0, stderr);
        string[] groups = ["t2i_pretrain", "unified_edit", "vlm_sft"];
        foreach (string group in groups)
        {
            Assert.Contains($"(step=0000001) Validation {group} mse: ", stderr, StringComparison.Ordinal);
            Assert.Contains($"(step=0000002) Validation {group} mse: ", stderr, StringComparison.Ordinal);
        }
        string metrics = await File.ReadAllTextAsync(Path.Combine(results, JsonlMetricSink.DefaultFileName), Ct);
        Assert.Contains("\"val/t2i_pretrain/mse\"", metrics, StringComparison.Ordinal);
        Assert.Contains("\"val/vlm_sft/ce\"", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownAndMalformedFlagsExitWith2ListingEachOne()
    {
        (int exit, string stdout, string stderr) = await RunAsync(["--frobnicate", "--total-stepz", "3", "--lr"]);

        Assert.Equal(TrainCommand.ExitUsage, exit);
        Assert.Empty(stdout);
        Assert.Contains("Unknown flag '--frobnicate'", stderr, StringComparison.Ordinal);
        Assert.Contains("Unknown flag '--total_stepz'", stderr, StringComparison.Ordinal);
        Assert.Contains("'--lr' needs a value", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingFilesAndBadValuesAreAllListedBeforeAnythingLoads()
    {
        using var dir = new Infrastructure.TempDirectory("bagel-cli-");
        string mix = Path.Combine(dir.Path, "configs", "mix.yaml");
        (int exit, _, string stderr) = await RunAsync(
        [
            "--llm_path", Path.Combine(dir.Path, "no-llm"), "--vit_path", Path.Combine(dir.Path, "no-vit"), "--vae_path", Path.Combine(dir.Path, "no-ae.safetensors"),
            "--dataset_config_file", mix, "--total_steps", "0", "--results_dir", Path.Combine(dir.Path, "results"),
        ]);

        Assert.Equal(TrainCommand.ExitUsage, exit);
        Assert.Contains("'total_steps'", stderr, StringComparison.Ordinal);
        Assert.Contains($"'llm_path' {Path.Combine(dir.Path, "no-llm")} does not exist", stderr, StringComparison.Ordinal);
        Assert.Contains($"'vit_path' {Path.Combine(dir.Path, "no-vit")} does not exist", stderr, StringComparison.Ordinal);
        Assert.Contains($"'vae_path' {Path.Combine(dir.Path, "no-ae.safetensors")} does not exist", stderr, StringComparison.Ordinal);
        Assert.Contains($"'dataset_config_file' {mix} does not exist", stderr, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(dir.Path, "configs", "dataset_info.yaml"), stderr, StringComparison.Ordinal); // the registry beside the mix
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "results")), "nothing is created before the flags are good");
    }

    [Fact]
    public async Task AMixThatNeedsAnOffBranchOrDoesNotParseIsListedWithTheOtherProblems()
    {
        using var dir = new Infrastructure.TempDirectory("bagel-cli-");
        dir.File("data/dataset_info.yaml", "vlm_sft:\n  llava:\n    data_dir: images\n    jsonl_path: a.jsonl\n    num_total_samples: 4\n");
        string vlmMix = dir.File("data/vlm.yaml", "vlm_sft:\n  dataset_names: [llava]\n  num_used_data: [4]\n  weight: 1\n  is_mandatory: true\n  image_transform_args:\n    image_stride: 14\n    max_image_size: 56\n    min_image_size: 28\n  frame_sampler_args:\n    max_num_frames: 12\n    min_num_frames: 8\n");
        dir.Folder("data/images");
        dir.File("data/a.jsonl", "");
        string brokenMix = dir.File("data/broken.yaml", "vlm_sft: [this is not a group block\n");

        (int exit, _, string stderr) = await RunAsync(["--dataset_config_file", vlmMix, "--visual_und", "False", "--llm_path", Path.Combine(dir.Path, "no-llm")]);
        (int brokenExit, _, string brokenErr) = await RunAsync(["--dataset_config_file", brokenMix, "--llm_path", Path.Combine(dir.Path, "no-llm")]);

        Assert.Equal(TrainCommand.ExitUsage, exit);
        Assert.True(stderr.Contains("group 'vlm_sft' needs the ViT, but visual_und is off", StringComparison.Ordinal), stderr);
        Assert.Contains("'llm_path'", stderr, StringComparison.Ordinal);
        Assert.Equal(TrainCommand.ExitUsage, brokenExit);
        Assert.Contains($"'dataset_config_file' {brokenMix}", brokenErr, StringComparison.Ordinal);
        Assert.Contains("'llm_path'", brokenErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HybridReplicaGroupsAreRefusedAsNotBuiltYet()
    {
        (int exit, _, string stderr) = await RunAsync(["--num_replicate", "2"]);

        Assert.Equal(TrainCommand.ExitUsage, exit);
        Assert.Contains("'num_replicate' 2 (hybrid replica groups) " + TrainingOptionsValidator.NeedsDistributed, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LauncherFlagsAreLeftToTheAppsLauncherWithAClearMessage()
    {
        (int exit, _, string stderr) = await RunAsync(["--nnodes", "2", "--node-rank=1", "--lr", "1e-4"]);

        Assert.Equal(TrainCommand.ExitUsage, exit);
        Assert.Contains("--nnodes, --node_rank are launcher settings", stderr, StringComparison.Ordinal);
        Assert.Contains("Bagel.Train --nproc_per_node N", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWorldSizeWithoutAMatchingProcessGroupIsRefused()
    {
        (int exit, _, string stderr) = await RunAsync(["--lr", "1e-4"], new TrainCommandOptions { WorldSize = 8 });

        Assert.Equal(TrainCommand.ExitUsage, exit);
        Assert.Contains("WORLD_SIZE is 8", stderr, StringComparison.Ordinal);
        Assert.Contains("the process group has 1 rank(s)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HelpListsTheFlagsOnStdout()
    {
        (int exit, string stdout, _) = await RunAsync(["--help"]);

        Assert.Equal(TrainCommand.ExitSuccess, exit);
        Assert.Contains("--dataset_info_file", stdout, StringComparison.Ordinal);
        Assert.Contains("--finetune_from_ema", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HelpGivesEveryFlagItsMeaningAndDefault()
    {
        (int exit, string stdout, _) = await RunAsync(["--help"]);

        Assert.Equal(TrainCommand.ExitSuccess, exit);
        Assert.Contains("--lr  (default: 0.0001)\n      Peak learning rate.", stdout, StringComparison.Ordinal);
        Assert.Contains("--resume_from  (default: none)", stdout, StringComparison.Ordinal);
        Assert.Contains("--visual_und  (default: true)", stdout, StringComparison.Ordinal);
        Assert.Contains("Bagel.Train --fresh", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("(no description)", stdout, StringComparison.Ordinal);
        foreach (string flag in ReferenceCommandLine.FlagNames)
        {
            Assert.False(string.IsNullOrWhiteSpace(ReferenceFlagHelp.Describe(flag)), flag);
            Assert.Contains($"--{flag}  (default: ", stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AStopRequestBeforeTrainingExitsAsInterrupted()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        using var stopped = new CancellationTokenSource();
        await stopped.CancelAsync();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        int exit = await TrainCommand.RunAsync(a.Flags(Path.Combine(a.Root, "stopped"), Path.Combine(a.Data, "example.yaml")), stdout, stderr, null, stopped.Token);

        Assert.Equal(TrainCommand.ExitInterrupted, exit);
        Assert.Equal(130, TrainCommand.ExitInterrupted);
        Assert.DoesNotContain("Done", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutBareStepLinesTheStepLineAppearsOnceAndNothingIsColoured()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        string results = Path.Combine(a.Root, "once");
        (int exit, string stdout, string stderr) = await RunAsync(a.Flags(results, Path.Combine(a.Data, "example.yaml")), new TrainCommandOptions { BareStepLines = false });

        Assert.True(exit == 0, stderr);
        Assert.Empty(stdout);
        Assert.Equal(2, Losses(stderr).Count);
        Assert.DoesNotContain('\u001b', stderr);
        Assert.DoesNotContain('\u001b', await File.ReadAllTextAsync(Path.Combine(results, "log.txt"), Ct));
        Assert.DoesNotContain("MFU", stderr, StringComparison.Ordinal); // no peak is known on a CPU
    }

    private static List<string> Losses(string stdout) => [.. LossPart().Matches(stdout).Select(m => m.Value)];

    [GeneratedRegex(@"\(step=\d+\) Train Loss mse: [0-9.]+, Train Loss ce: [0-9.]+")]
    private static partial Regex LossPart();
}
