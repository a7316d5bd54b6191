using System.Text.Json;
using Bagel.Models.Bagel;
using Bagel.Models.Lora;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Recipes;
using Bagel.Training.ValidationImages;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Training.ValidationImages;

/// <summary>Validation images of a LoRA run: the frozen base renders with the adapters attached (the EMA adapters
/// swapped in for the render), and the training is exactly what it is without them.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class LoraValidationImageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Adapters on both experts, <c>llm2vae</c> and <c>lm_head</c> (as <c>LoraTrainingTests</c>), with dropout, so
    /// a render that left the adapters in eval mode would change the next steps.</summary>
    private static LoraOptions Lora => new()
    {
        Rank = 4, Alpha = 8, Dropout = 0.1,
        TargetModules = [LoraTargets.RegexPrefix + "(?:" + LoraTargets.LanguageModel[LoraTargets.RegexPrefix.Length..] + @")|llm2vae|language_model\.lm_head"],
        RankPattern = [new("llm2vae", 32)], AlphaPattern = [new("llm2vae", 64)],
    };

    private static async Task<List<TrainingStepReport>> RunAsync(string results, bool validationImages)
    {
        var reports = new List<TrainingStepReport>();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var options = new TinyPresetOptions
        {
            ResultsDir = results, TotalSteps = 4, SaveEvery = 2, KeepLastCheckpoints = 1, OnStep = reports.Add,
            Configure = c => c.Training.Lr = 1e-2, Lora = Lora, ValidationImages = validationImages, ValidationImageTimesteps = 3,
            Presentation = new TrainCommandOptions { ShowProgress = false, ColorLogs = false },
        };
        int exit = await TinyPreset.RunAsync(options, stdout, stderr, Ct);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr.ToString());
        return reports;
    }

    [Fact]
    public async Task TheTinyPresetWithLoraRendersPromptsEditsAndAnswersAndTrainsExactlyAsWithoutThem()
    {
        using var folder = new TempDirectory("bagel-lora-valimages-");
        string plain = Path.Combine(folder.Path, "plain"), rendered = Path.Combine(folder.Path, "rendered");
        List<TrainingStepReport> without = await RunAsync(plain, validationImages: false);
        List<TrainingStepReport> with = await RunAsync(rendered, validationImages: true);

        // Rendered after step 2 (between steps) and at step 4: the next steps, the adapters, their EMA and AdamW state are bit-identical.
        Assert.Equal(without.Select(r => (r.Mse, r.Ce, r.GradNorm)), with.Select(r => (r.Mse, r.Ce, r.GradNorm)));
        string a = CheckpointCatalog.FindLatest(Path.Combine(plain, "checkpoints"))!.Folder, b = CheckpointCatalog.FindLatest(Path.Combine(rendered, "checkpoints"))!.Folder;
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
            Assert.True(File.ReadAllBytes(Path.Combine(a, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, file))), file);

        string validation = Path.Combine(rendered, TrainerBuilder.DefaultValidationImagesFolder);
        Assert.False(Directory.Exists(Path.Combine(plain, TrainerBuilder.DefaultValidationImagesFolder)));
        Assert.Equal(["step_0000002.json", "step_0000002.png", "step_0000002_answers.txt", "step_0000004.json", "step_0000004.png", "step_0000004_answers.txt"],
            Directory.GetFiles(validation).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        using JsonDocument sidecar = JsonDocument.Parse(File.ReadAllText(Path.Combine(validation, "step_0000004.json")));
        JsonElement root = sidecar.RootElement;
        Assert.Equal("ema", root.GetProperty("weights").GetString());
        Assert.Equal(["prompt", "prompt", "prompt", "prompt", "edit"], root.GetProperty("images").EnumerateArray().Select(e => e.GetProperty("kind").GetString()));
        Assert.Equal("question", Assert.Single(root.GetProperty("answers").EnumerateArray()).GetProperty("kind").GetString());
        Assert.Empty(root.GetProperty("skipped").EnumerateArray());
    }

    [Fact]
    public void TheRenderComputesWithTheEmaAdaptersAndTheLiveOnesStayBitForBit()
    {
        using BagelModel model = BagelTestModels.Model();
        using LoraAdapterSet attached = LoraAdapterSet.Attach(model, new LoraOptions { Rank = 2, TargetModules = [LoraTargets.AllLinear] });
        using LoraAdapterSet ema = attached.CreateDetachedCopy();
        using (torch.no_grad())
        {
            foreach (LoraLinear layer in attached.Layers) layer.WeightB.normal_();
            foreach (LoraLinear layer in ema.Layers)
            {
                layer.WeightA.normal_();
                layer.WeightB.normal_();
            }
        }
        byte[][] live = [.. attached.Layers.SelectMany(l => new[] { l.WeightA.bytes.ToArray(), l.WeightB.bytes.ToArray() })];

        LoraLinear first = attached.Layers[0];
        using Tensor x = torch.randn(3, first.InFeatures);
        using (ValidationWeights weights = ValidationWeights.Lora(model, attached, ema))
        {
            Assert.Same(model, weights.Model);
            Assert.Same(attached, Assert.Single(weights.AlsoEval));
            using (torch.no_grad())
            {
                // The hooked layer's output is base + the EMA adapter's delta, while the live weights stay untouched.
                using Tensor rendered = first.BaseLayer!.call(x);
                using Tensor emaDelta = first.DeltaWeight(ema.Layers[0]);
                using Tensor liveDelta = first.DeltaWeight();
                using Tensor withEma = nn.functional.linear(x, first.BaseLayer.weight!.add(emaDelta), first.BaseLayer.bias);
                using Tensor withLive = nn.functional.linear(x, first.BaseLayer.weight!.add(liveDelta), first.BaseLayer.bias);
                double scale = withEma.abs().max().item<float>();
                double fromEma = rendered.sub(withEma).abs().max().item<float>(), fromLive = rendered.sub(withLive).abs().max().item<float>();
                Assert.True(fromEma <= 1e-4 * scale && fromLive > 1e-2 * scale,
                    $"the render does not compute with the EMA adapters: max |diff| {fromEma} from the EMA delta, {fromLive} from the live one (scale {scale})");
            }
            Assert.Equal(live, attached.Layers.SelectMany(l => new[] { l.WeightA.bytes.ToArray(), l.WeightB.bytes.ToArray() }));
        }
        Assert.Equal(live, attached.Layers.SelectMany(l => new[] { l.WeightA.bytes.ToArray(), l.WeightB.bytes.ToArray() }));
        using (torch.no_grad())
        {
            // Afterwards the live adapters compute again.
            using Tensor after = first.BaseLayer!.call(x);
            using Tensor liveDelta = first.DeltaWeight();
            using Tensor withLive = nn.functional.linear(x, first.BaseLayer.weight!.add(liveDelta), first.BaseLayer.bias);
            double scale = withLive.abs().max().item<float>(), fromLive = after.sub(withLive).abs().max().item<float>();
            Assert.True(fromLive <= 1e-4 * scale, $"the live adapters do not compute after the render: max |diff| {fromLive} (scale {scale})");
        }

        using (ValidationWeights weights = ValidationWeights.Lora(model, attached, ema: null))
            Assert.Equal(live, attached.Layers.SelectMany(l => new[] { l.WeightA.bytes.ToArray(), l.WeightB.bytes.ToArray() }));
    }
}
