using Bagel.Core.SafeTensors;
using Bagel.Data.Config;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using Bagel.Training.Recipes;
using TorchSharp;

namespace Bagel.Tests.Training.Recipes;

/// <summary>Each recipe built from the reference's flags and trained for 2-3 steps on tiny artifacts written at test time.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class BagelRecipeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PretrainingFromPartsLoadsTheFilesAndCopiesTheGenExpertsFromTheirUndTwins()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        TrainingConfiguration config = RecipeArtifacts.Bind(a.Flags(a.Results, Path.Combine(a.Data, "example.yaml")));
        using BagelRun run = await BagelRecipe.BuildAsync(config, cancellationToken: Ct);
        using (var scope = torch.NewDisposeScope())
        {
            using SafeTensorsReader llm = SafeTensorsReader.Open(Path.Combine(a.Llm, "model.safetensors"));
            Dictionary<string, torch.Tensor> live = run.Model.LanguageModel.state_dict();
            Assert.True(llm.ReadTensor("model.embed_tokens.weight").allclose(live["model.embed_tokens.weight"], rtol: 0, atol: 0));
            Assert.True(llm.ReadTensor("model.layers.1.mlp.up_proj.weight").allclose(live["model.layers.1.mlp.up_proj.weight"], rtol: 0, atol: 0));
            List<string> genExperts = [.. live.Keys.Where(k => k.Contains("_moe_gen", StringComparison.Ordinal))];
            Assert.NotEmpty(genExperts);
            foreach (string gen in genExperts)
                Assert.True(live[gen].allclose(live[gen.Replace("_moe_gen", "", StringComparison.Ordinal)], rtol: 0, atol: 0), $"{gen} differs from its und twin");

            using SafeTensorsReader vit = SafeTensorsReader.Open(Path.Combine(a.Vit, "model.safetensors"));
            const string VitKey = "vision_model.encoder.layers.1.mlp.fc1.weight";
            Assert.True(vit.ReadTensor(VitKey).allclose(run.Model.VitModel!.state_dict()[VitKey], rtol: 0, atol: 0));
            Assert.Equal(2, run.Model.VitModel.Config.NumHiddenLayers); // 3 in the file + 1 + vit_select_layer (-2)
        }
        Assert.NotNull(run.Vae);
        Assert.Equal(2, run.LoadReports.Count);

        (TrainingRunResult result, List<TrainingStepReport> steps) = await RecipeTraining.TrainAsync(run);

        Assert.Equal(2, result.CompletedSteps);
        Assert.All(steps, s => Assert.True(double.IsFinite(s.TotalLoss) && s.TotalLoss > 0, $"step {s.Step}: loss {s.TotalLoss}"));
        Assert.True(File.Exists(Path.Combine(result.LastCheckpoint, CheckpointLayout.ModelFileName)));
    }

    [Fact]
    public async Task FineTuningAReleaseStartsFromItsEmaWithWarmupAndARelaunchResumesFully()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        a.WriteRelease(seed: 99);
        List<string> flags =
        [
            .. a.Flags(a.Results, Path.Combine(a.Data, "example.yaml")),
            "--finetune_from_hf", "--model_path", a.Release, "--resume_from", a.Release, "--resume_model_only", "--finetune_from_ema", "--auto_resume",
            "--warmup_steps", "10", "--llm_path", Path.Combine(a.Root, "not-read"), // the release brings its configs and tokenizer
        ];
        using var ema = SafeTensorsReader.Open(Path.Combine(a.Release, "ema.safetensors"));
        var startedFromEma = new List<string>();

        using (BagelRun first = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), cancellationToken: Ct))
        {
            Assert.Empty(first.LoadReports);
            (TrainingRunResult result, List<TrainingStepReport> steps) = await RecipeTraining.TrainAsync(first, onStep: report =>
            {
                if (report.Step != 0) return;
                // Warm-up restarted, so the first update used lr 0: the weights after step 0 are still the loaded ones.
                using var scope = torch.NewDisposeScope();
                Dictionary<string, torch.Tensor> live = first.Model.state_dict();
                foreach (SafeTensorInfo info in ema.Tensors.Where(t => !t.Name.EndsWith("pos_embed.pos_embed", StringComparison.Ordinal)))
                    if (ema.ReadTensor(info.Name).allclose(live[info.Name], rtol: 0, atol: 0)) startedFromEma.Add(info.Name);
            });
            Assert.Equal(0, result.StartStep);
            Assert.Equal(ema.Tensors.Count(t => !t.Name.EndsWith("pos_embed.pos_embed", StringComparison.Ordinal)), startedFromEma.Count);
            Assert.Equal([0.0, 1e-3 / 10], steps.Select(s => s.LearningRate));
        }

        // Relaunch with the same flags and one more step: auto_resume finds checkpoint 2 and resumes fully (no warm-up restart).
        using BagelRun second = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind([.. flags, "--total_steps", "3"]), cancellationToken: Ct);
        (TrainingRunResult resumed, List<TrainingStepReport> more) = await RecipeTraining.TrainAsync(second);
        Assert.Equal(2, resumed.StartStep);
        TrainingStepReport only = Assert.Single(more);
        Assert.Equal(2, only.Step);
        Assert.Equal(1e-3 * 2 / 10, only.LearningRate, 12);
    }

    [Fact]
    public async Task AT2IOnlyFineTuneOfAFullReleaseSkipsTheViTBranchOfTheCheckpoint()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        a.WriteRelease(seed: 3);
        List<string> flags =
        [
            .. a.Flags(a.Results, a.Mix(DatasetGroupKinds.T2IPretrain), totalSteps: 1),
            "--finetune_from_hf", "--model_path", a.Release, "--resume_from", a.Release, "--resume_model_only", "--finetune_from_ema", "--visual_und", "False",
        ];
        var loggers = new CollectingLoggerProvider();
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), loggers, Ct);

        (TrainingRunResult result, _) = await RecipeTraining.TrainAsync(run, loggers);

        Assert.Equal(1, result.CompletedSteps);
        Assert.Contains(loggers.Messages, m => m.Contains("skipped the tensors of branches this model does not have (connector, vit_model)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task T2IOnlyBuildsNoVitAndNeedsNoVitPath()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        List<string> flags = [.. a.Flags(a.Results, a.Mix(DatasetGroupKinds.T2IPretrain)), "--visual_und", "False", "--vit_path", Path.Combine(a.Root, "no-siglip-here")];
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), cancellationToken: Ct);
        Assert.Null(run.Model.VitModel);
        Assert.Null(run.Model.Connector);
        Assert.Null(run.Paths.VitConfigFile);
        Assert.Single(run.LoadReports); // the LLM only

        (TrainingRunResult result, List<TrainingStepReport> steps) = await RecipeTraining.TrainAsync(run);
        Assert.Equal(2, result.CompletedSteps);
        Assert.All(steps, s => Assert.True(s.Mse > 0 && s.MseTokens > 0, $"step {s.Step}: mse {s.Mse} over {s.MseTokens} tokens"));
    }

    [Fact]
    public async Task VlmOnlyLoadsNoVaeAndLogsMseZero()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        List<string> flags = [.. a.Flags(a.Results, a.Mix(DatasetGroupKinds.VlmSft)), "--visual_gen", "False", "--vae_path", Path.Combine(a.Root, "bogus", "ae.safetensors")];
        var loggers = new CollectingLoggerProvider();
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), loggers, Ct);
        Assert.Null(run.Vae);
        Assert.Null(run.Model.Llm2Vae);

        (TrainingRunResult result, List<TrainingStepReport> steps) = await RecipeTraining.TrainAsync(run, loggers);
        Assert.Equal(2, result.CompletedSteps);
        Assert.All(steps, s => Assert.True(s.Ce > 0 && s.Mse == 0, $"step {s.Step}: ce {s.Ce}, mse {s.Mse}"));
        Assert.Equal(2, loggers.Messages.Count(m => m.Contains("Train Loss mse: 0.0000, Train Loss ce: ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task FreezeLlmAndFreezeVitLeaveThoseWeightsUnchangedWhileTheRestTrains()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        List<string> flags = [.. a.Flags(a.Results, Path.Combine(a.Data, "example.yaml")), "--freeze_llm", "--freeze_vit"];
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), cancellationToken: Ct);
        using var scope = torch.NewDisposeScope();
        Dictionary<string, torch.Tensor> llm = RecipeTraining.Snapshot(run.Model.LanguageModel);
        Dictionary<string, torch.Tensor> vit = RecipeTraining.Snapshot(run.Model.VitModel!);
        Dictionary<string, torch.Tensor> connector = RecipeTraining.Snapshot(run.Model.Connector!);

        await RecipeTraining.TrainAsync(run);

        Assert.Empty(RecipeTraining.Changed(run.Model.LanguageModel, llm));
        Assert.Empty(RecipeTraining.Changed(run.Model.VitModel!, vit));
        Assert.NotEmpty(RecipeTraining.Changed(run.Model.Connector!, connector));
    }

    [Theory]
    [InlineData("Qwen2DecoderLayer", false)]
    [InlineData("Qwen2MoTDecoderLayer", true)]
    public async Task LayerModuleChoosesTheDecoderLayerOfTheLanguageModel(string layerModule, bool hasGenerationExperts)
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        List<string> flags = [.. a.Flags(a.Results, Path.Combine(a.Data, "example.yaml")), "--layer_module", layerModule];
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), cancellationToken: Ct);
        Assert.Equal(layerModule, run.Model.Config.LlmConfig.LayerModule.ToString());
        Assert.Equal(hasGenerationExperts, run.Model.LanguageModel.named_parameters().Any(p => p.name.Contains("moe_gen", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task FreezeVaeOffSaysSoButTheVaeIsNeverTrained()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        List<string> flags = [.. a.Flags(a.Results, a.Mix(DatasetGroupKinds.T2IPretrain)), "--visual_und", "False", "--freeze_vae", "False"];
        var loggers = new CollectingLoggerProvider();
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), loggers, Ct);
        using var scope = torch.NewDisposeScope();
        Dictionary<string, torch.Tensor> vae = RecipeTraining.Snapshot(run.Vae!);

        await RecipeTraining.TrainAsync(run, loggers);

        Assert.Contains(loggers.Messages, m => m.Contains("freeze_vae is off, but the VAE stays frozen", StringComparison.Ordinal));
        Assert.Empty(RecipeTraining.Changed(run.Vae!, vae));
    }

    [Fact]
    public async Task FreezeUndStopsTheUnderstandingInputsTrainingButNotTheHead()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        List<string> flags = [.. a.Flags(a.Results, Path.Combine(a.Data, "example.yaml")), "--freeze_und"];
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), cancellationToken: Ct);
        Assert.True(run.Model.Config.LlmConfig.FreezeUnd);
        using var scope = torch.NewDisposeScope();
        Dictionary<string, torch.Tensor> embeddings = RecipeTraining.Snapshot(run.Model.LanguageModel.Model.EmbedTokens);
        Dictionary<string, torch.Tensor> vit = RecipeTraining.Snapshot(run.Model.VitModel!);
        Dictionary<string, torch.Tensor> head = RecipeTraining.Snapshot(run.Model.LanguageModel.LmHead);

        await RecipeTraining.TrainAsync(run);

        // As the reference: the und activations are detached, so the embeddings and the ViT get no gradient, but
        // lm_head (applied after the detach) still trains.
        Assert.Empty(RecipeTraining.Changed(run.Model.LanguageModel.Model.EmbedTokens, embeddings));
        Assert.Empty(RecipeTraining.Changed(run.Model.VitModel!, vit));
        Assert.NotEmpty(RecipeTraining.Changed(run.Model.LanguageModel.LmHead, head));
    }

    [Fact]
    public async Task AFineTuneCheckpointMissingATensorFailsNamingIt()
    {
        using RecipeArtifacts a = await RecipeArtifacts.CreateAsync();
        a.WriteRelease(seed: 5, leaveOut: "connector.fc1.weight");
        List<string> flags =
        [
            .. a.Flags(a.Results, Path.Combine(a.Data, "example.yaml")),
            "--finetune_from_hf", "--model_path", a.Release, "--resume_from", a.Release, "--resume_model_only", "--finetune_from_ema",
        ];
        using BagelRun run = await BagelRecipe.BuildAsync(RecipeArtifacts.Bind(flags), cancellationToken: Ct);

        var error = await Assert.ThrowsAsync<CheckpointException>(() => RecipeTraining.TrainAsync(run));

        Assert.Contains("1 missing tensor(s) [connector.fc1.weight]", error.Message, StringComparison.Ordinal);
        Assert.Contains("ema.safetensors", error.Message, StringComparison.Ordinal);
    }
}
