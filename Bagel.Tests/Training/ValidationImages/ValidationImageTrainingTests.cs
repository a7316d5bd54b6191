using System.Text.Json;
using Bagel.Core.DataStatus;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Training.Loop;
using Bagel.Tests.Training.Metrics;
using Bagel.Tests.Training.Models;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Models;
using Bagel.Data.Images;
using Bagel.Training.Options;
using Bagel.Training.Recipes;
using Bagel.Training.ValidationImages;
using SkiaSharp;
using TorchSharp;

namespace Bagel.Tests.Training.ValidationImages;

/// <summary>Validation images during training: rendered on schedule with the EMA weights, written as PNG + JSON and to
/// TensorBoard, and without any effect on the training.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds and draws from torch's global generator
public sealed class ValidationImageTrainingTests
{
    /// <summary>The tiny text-to-image composite with a ViT too, so that questions are answered.</summary>
    private static BagelModel Model(long seed)
    {
        torch.manual_seed(seed);
        return new BagelModel(TinyTextToImage.Config() with { VisualUnd = true, VitConfig = BagelTestModels.Vit });
    }

    /// <summary>The input picture: 40×24, red with a blue square (the example data's transforms make it 64×32 for the VAE).</summary>
    private const int InputWidth = 40, InputHeight = 24;

    private static IReadOnlyList<ValidationPrompt> Prompts(TempDirectory dir)
    {
        string input = dir.File("inputs/in.png");
        using (var bitmap = new SKBitmap(InputWidth, InputHeight))
        {
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.Red);
                using var blue = new SKPaint { Color = SKColors.Blue };
                canvas.DrawRect(8, 4, 12, 12, blue);
            }
            using SKData data = SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(input, data.ToArray());
        }
        string file = dir.File("prompts.jsonl", """
            # two text-to-image prompts, an edit and a question
            {"prompt": "solid red"}
            {"edit": "make it blue", "image": "inputs/in.png"}
            {"prompt": "four quadrants"}
            {"question": "What colour is it?", "image": "inputs/in.png"}
            """);
        return ValidationPromptFile.Load(file);
    }

    private sealed record Run(List<TrainingStepReport> Steps, List<ValidationImageResult> Renders, CollectingLoggerProvider Logs);

    private static async Task<Run> TrainAsync(BagelTrainingModel model, string folder, IReadOnlyList<ValidationPrompt>? prompts, TensorBoardMetricSink? tensorBoard = null)
    {
        TrainingConfiguration config = ShortRuns.Configuration(folder, totalSteps: 4, lr: 3e-3);
        config.Training.Ema = 0.9;
        var steps = new List<TrainingStepReport>();
        var renders = new List<ValidationImageResult>();
        var logs = new CollectingLoggerProvider();
        var builder = new TrainerBuilder().UseModel(model).UseData((_, ct) => TinyTextToImage.Endless(ct), () => new RankDataStatus { Rank = 0 })
            .UseOptions(config).UseLogger(logs).OnStep(steps.Add);
        if (tensorBoard is not null) builder.AddMetricSink(tensorBoard);
        if (prompts is not null)
        {
            builder.UseValidationImages(new ValidationImageOptions
            {
                Prompts = prompts,
                Tokenizer = TinyTextToImage.Tokenizer,
                EverySteps = 2,
                Generation = ValidationImageOptions.DefaultGeneration(TinyTextToImage.Side, TinyTextToImage.Side) with { NumTimesteps = 4, CfgImgScale = 1.5 },
                VaeTransform = TinyPreset.VaeImageTransform,
                VitTransform = TinyPreset.VitImageTransform,
                TextGeneration = new TextGenerationOptions { MaxLength = 12 },
                OnRendered = renders.Add,
            });
        }
        using Trainer trainer = builder.Build();
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        return new Run(steps, renders, logs);
    }

    [Fact]
    public async Task RendersPromptsEditsAndAnswersOnScheduleIntoPngTextJsonAndTensorBoardWithoutChangingTraining()
    {
        using var dir = new TempDirectory("bagel-valimages-");
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        using BagelModel plainModel = Model(7);
        Run plain = await TrainAsync(new BagelTrainingModel(plainModel, vae, () => Model(99)), Path.Combine(dir.Path, "plain"), prompts: null);

        using BagelModel renderedModel = Model(7);
        string results = Path.Combine(dir.Path, "rendered");
        await using var tensorBoard = new TensorBoardMetricSink(Path.Combine(results, "tensorboard"));
        Run rendered = await TrainAsync(new BagelTrainingModel(renderedModel, vae, () => Model(99)), results, Prompts(dir), tensorBoard);

        // Training is bit-identical: losses, gradient norms and every weight.
        Assert.Equal(plain.Steps.Select(s => (s.Mse, s.TotalLoss, s.GradNorm)), rendered.Steps.Select(s => (s.Mse, s.TotalLoss, s.GradNorm)));
        foreach (var ((name, a), (_, b)) in plainModel.named_parameters().Zip(renderedModel.named_parameters()))
            Assert.True(a.bytes.SequenceEqual(b.bytes), $"parameter {name} differs");

        // Rendered after step 2 and at the end (step 4): 2 text-to-image prompts and the edit drawn, the question answered.
        Assert.Equal([2L, 4], rendered.Renders.Select(r => r.Step));
        Assert.All(rendered.Renders, r => Assert.Equal((3, 1, 0), (r.Rendered, r.Answered, r.Skipped)));
        string folder = Path.Combine(results, TrainerBuilder.DefaultValidationImagesFolder);
        Assert.Equal(Path.Combine(folder, "step_0000004.png"), rendered.Renders[^1].PngPath);
        Assert.Equal(Path.Combine(folder, "step_0000004_answers.txt"), rendered.Renders[^1].AnswersPath);
        Assert.Equal(["step_0000002.json", "step_0000002.png", "step_0000002_answers.txt", "step_0000004.json", "step_0000004.png", "step_0000004_answers.txt"],
            Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(rendered.Logs.Messages, m => m.Contains(") is skipped:", StringComparison.Ordinal));
        Assert.Equal(2, rendered.Logs.Messages.Count(m => m.Contains("Validation images: 3 image(s) and 1 answer(s) with the EMA weights", StringComparison.Ordinal)));

        // The PNG decodes (SkiaSharp): four cells in a row, each as wide as the edit's input and output side by side
        // (the 40×24 input resized by the VAE transform, the output of the same size).
        (int inputWidth, int inputHeight) = new ImageTransform(TinyPreset.VaeImageTransform).ComputeResizeSize(InputWidth, InputHeight);
        int cellWidth = Math.Max(ValidationImageGrid.MinCellWidth, 2 * inputWidth + 4);
        byte[] png = File.ReadAllBytes(rendered.Renders[^1].PngPath!);
        using (SKBitmap decoded = SKBitmap.Decode(png))
        {
            Assert.NotNull(decoded);
            Assert.Equal(4 * cellWidth + 5 * 4, decoded.Width);
            Assert.True(decoded.Height > Math.Max(TinyTextToImage.Side, inputHeight), $"height {decoded.Height}");
            // The edit's input is drawn as the model saw it: red at its left edge (the cell's content is centred).
            int inputX = 4 + cellWidth + 4 + (cellWidth - (2 * inputWidth + 4)) / 2;
            SKColor left = decoded.GetPixel(inputX + 1, 4 + Math.Max(TinyTextToImage.Side, inputHeight) / 2);
            Assert.True(left.Red > 200 && left.Blue < 60, $"input pixel {left}");
        }

        // The sidecar lists the images and the answer in grid order, with the settings; nothing is skipped.
        using JsonDocument sidecar = JsonDocument.Parse(File.ReadAllText(rendered.Renders[^1].SidecarPath));
        JsonElement root = sidecar.RootElement;
        Assert.Equal(4, root.GetProperty("step").GetInt64());
        Assert.Equal("ema", root.GetProperty("weights").GetString());
        Assert.Equal("step_0000004_answers.txt", root.GetProperty("answers_file").GetString());
        Assert.Equal(12, root.GetProperty("max_length").GetInt32());
        Assert.Equal(new TrainingOptions().GlobalSeed, root.GetProperty("seed").GetInt64());
        JsonElement[] cells = [.. root.GetProperty("images").EnumerateArray()];
        Assert.Equal(["solid red", "make it blue", "four quadrants"], cells.Select(e => e.GetProperty("text").GetString()));
        Assert.Equal(["prompt", "edit", "prompt"], cells.Select(e => e.GetProperty("kind").GetString()));
        Assert.Equal([0, 1, 2], cells.Select(e => e.GetProperty("entry").GetInt32()));
        Assert.Equal(dir.File("inputs/in.png"), cells[1].GetProperty("image").GetString());
        JsonElement answer = Assert.Single(root.GetProperty("answers").EnumerateArray());
        Assert.Equal((3, "What colour is it?", 0, 3), (answer.GetProperty("entry").GetInt32(), answer.GetProperty("text").GetString(),
            answer.GetProperty("row").GetInt32(), answer.GetProperty("column").GetInt32()));
        Assert.Empty(root.GetProperty("skipped").EnumerateArray());

        // The answers file holds the question and the same answer (greedy: the same text at every render of these weights).
        string answers = File.ReadAllText(rendered.Renders[^1].AnswersPath!);
        Assert.Contains("Q: What colour is it?\n", answers, StringComparison.Ordinal);
        Assert.Contains("A: " + answer.GetProperty("answer").GetString() + "\n", answers, StringComparison.Ordinal);

        // TensorBoard holds the same PNGs as image summaries at steps 2 and 4, in the scalars' event file.
        var images = TfRecordEventReader.Read(tensorBoard.EventFile!).SelectMany(e => e.Values.Where(v => v.Image is not null).Select(v => (e.Step, v))).ToList();
        Assert.Equal([2L, 4], images.Select(i => i.Step));
        Assert.All(images, i => Assert.Equal(("val/images", 3), (i.v.Tag, i.v.Image!.Colorspace)));
        Assert.Equal(png, images[^1].v.Image!.Encoded);
        Assert.Equal(File.ReadAllBytes(rendered.Renders[0].PngPath!), images[0].v.Image!.Encoded);
        // The weights changed between the renders, so the grids differ.
        Assert.NotEqual(images[0].v.Image!.Encoded, images[1].v.Image!.Encoded);
    }

    [Fact]
    public void TheSameWeightsRenderTheSameGridWhateverTorchsGeneratorHoldsAndModesAndGeneratorAreRestored()
    {
        using var dir = new TempDirectory("bagel-valimages-");
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        using BagelModel model = Model(5);
        var renderer = new ValidationImageRenderer(new ValidationImageOptions
        {
            Prompts = [ValidationPrompt.TextToImage("solid blue"), ValidationPrompt.TextToImage("green stripes"), ValidationPrompt.TextToImage("solid red")],
            Tokenizer = TinyTextToImage.Tokenizer,
            OutputFolder = dir.Path,
            Seed = 3,
            Generation = ValidationImageOptions.DefaultGeneration(32, 48) with { NumTimesteps = 3 },
        }, vae);
        model.train();
        vae.train();

        torch.manual_seed(1);
        byte[] first = File.ReadAllBytes(renderer.Render(model, 1, TestContext.Current.CancellationToken).PngPath!);
        using torch.Tensor drawnAfter = torch.rand(4); // the generator continues as if no render had happened
        torch.manual_seed(1);
        using torch.Tensor expected = torch.rand(4);
        torch.manual_seed(2);
        ValidationImageResult again = renderer.Render(model, 2, TestContext.Current.CancellationToken);

        Assert.Equal(first, File.ReadAllBytes(again.PngPath!));
        Assert.True(drawnAfter.equal(expected).all().item<bool>());
        Assert.True(model.training && vae.training, "the train flags were not restored");
        Assert.All(model.modules(), m => Assert.True(m.training));
        Assert.Equal(3, again.Rendered);
        using SKBitmap decoded = SKBitmap.Decode(again.PngPath!);
        Assert.Equal(3 * ValidationImageGrid.MinCellWidth + 4 * 4, decoded.Width);
    }

    [Fact]
    public void AQuestionForAModelWithoutAViTIsSkippedWithItsReasonAndWarnedOnce()
    {
        using var dir = new TempDirectory("bagel-valimages-");
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        torch.manual_seed(5);
        using var model = new BagelModel(TinyTextToImage.Config()); // no understanding branch
        using var logs = new CollectingLoggerProvider();
        var renderer = new ValidationImageRenderer(new ValidationImageOptions
        {
            Prompts = [ValidationPrompt.TextToImage("solid blue"), .. Prompts(dir).Where(p => p.Kind == ValidationPromptKind.Question)],
            Tokenizer = TinyTextToImage.Tokenizer,
            OutputFolder = dir.Path,
            Seed = 3,
            Generation = ValidationImageOptions.DefaultGeneration(32, 32) with { NumTimesteps = 2 },
        }, vae, logs.CreateLogger("test"));

        ValidationImageResult first = renderer.Render(model, 1, TestContext.Current.CancellationToken);
        ValidationImageResult second = renderer.Render(model, 2, TestContext.Current.CancellationToken);

        Assert.Equal((1, 0, 1, null), (second.Rendered, second.Answered, second.Skipped, second.AnswersPath));
        Assert.Single(logs.Messages, m => m.Contains("(question) is skipped: the model has no understanding branch", StringComparison.Ordinal));
        using JsonDocument sidecar = JsonDocument.Parse(File.ReadAllText(first.SidecarPath));
        JsonElement skipped = Assert.Single(sidecar.RootElement.GetProperty("skipped").EnumerateArray());
        Assert.Equal((1, "question"), (skipped.GetProperty("entry").GetInt32(), skipped.GetProperty("kind").GetString()));
        Assert.Contains("visual_und", skipped.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TheBuilderReportsEveryBadValidationImageSettingAtOnce()
    {
        using var model = new TinyPackedModel(seed: 3);
        TrainingConfiguration configuration = TrainingConfiguration.Defaults();
        var failures = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainerBuilder().UseModel(model).UseOptions(configuration)
            .UseData((_, _) => AsyncEnumerable.Empty<Bagel.Core.Batching.PackedBatch>())
            .UseValidationImages(new ValidationImageOptions
            {
                Prompts = [], Tokenizer = TinyTextToImage.Tokenizer, EverySteps = -1,
                Generation = new ImageGenerationOptions { NumTimesteps = 1 },
            }).Build()).Failures;

        Assert.Equal(4, failures.Count);
        Assert.Contains(failures, f => f.Contains("must be a BagelTrainingModel", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("no prompts", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("every -1 steps", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("num_timesteps 1", StringComparison.Ordinal));
    }
}
