using System.Text.Json;
using Bagel.Core.Randomness;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Data.Images;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Models.FluxVae;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Generation;

/// <summary>
/// Image editing and VLM answering against the reference's own inferencer (Fixtures/Generation, made by
/// make_edit_vlm_fixtures.py): a tiny BAGEL with both branches and the tiny FLUX autoencoder. Editing: the input
/// image's VAE and ViT transforms, every step's x_t, raw branch velocities and guided velocity, the final latent and
/// the decoded image, with the reference's posterior and initial noise replayed. Answering: the generated ids exactly
/// and the logits of every step.
/// </summary>
public sealed class EditAndAnswerReferenceTests
{
    private static readonly string Directory = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Generation");

    /// <summary>Relative tolerance (max |diff| / max |expected|) for f32 tensors.</summary>
    private const double Tolerance = 1e-4;

    private static Dictionary<string, Tensor> Expected()
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(Path.Combine(Directory, "edit_vlm_expected.safetensors"));
        return reader.Tensors.ToDictionary(t => t.Name, t => reader.ReadTensor(t.Name));
    }

    private static JsonElement Layout() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "edit_vlm_layout.json"))).RootElement;

    private static BagelModel Model()
    {
        var config = new BagelConfig
        {
            VisualGen = true,
            VisualUnd = true,
            LlmConfig = Qwen2Fixtures.Tiny(),
            VitConfig = BagelTestModels.Vit,
            VaeConfig = ReferenceFixtures.TinyConfig(),
            MaxLatentSize = 4,
        };
        var model = new BagelModel(config);
        StateDictLoadReport report = BagelCheckpointLoader.LoadBagel(model, Path.Combine(Directory, "edit_vlm_weights.safetensors"),
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Empty(report.UnexpectedKeys);
        model.eval();
        return model;
    }

    private static ImageTransform Transform(JsonElement t) => new(new ImageTransformOptions
    {
        MaxImageSize = t.GetProperty("max_image_size").GetInt32(),
        MinImageSize = t.GetProperty("min_image_size").GetInt32(),
        ImageStride = t.GetProperty("image_stride").GetInt32(),
    });

    /// <summary>The fixture's input picture, resized by the VAE rule as the inferencer does first.</summary>
    private static RgbImage ResizedInput(Dictionary<string, Tensor> expected, ImageTransform vaeTransform)
    {
        Tensor pixels = expected["input_pixels"];
        byte[] bytes = [.. pixels.to(uint8).data<byte>()];
        var input = new RgbImage((int)pixels.shape[1], (int)pixels.shape[0], bytes);
        return vaeTransform.Resize(input);
    }

    private static ImageGenerationOptions Options(JsonElement s) => new()
    {
        CfgTextScale = s.GetProperty("cfg_text_scale").GetDouble(),
        CfgImgScale = s.GetProperty("cfg_img_scale").GetDouble(),
        CfgInterval = (s.GetProperty("cfg_interval")[0].GetDouble(), s.GetProperty("cfg_interval")[1].GetDouble()),
        TimestepShift = s.GetProperty("timestep_shift").GetDouble(),
        NumTimesteps = s.GetProperty("num_timesteps").GetInt32(),
        CfgRenormMin = s.GetProperty("cfg_renorm_min").GetDouble(),
        CfgRenormType = s.GetProperty("cfg_renorm_type").GetString() == "global" ? CfgRenormType.Global : CfgRenormType.TextChannel,
    };

    private static GenerationTokenIds Tokens(JsonElement root)
    {
        JsonElement t = root.GetProperty("new_token_ids");
        return new GenerationTokenIds(t.GetProperty("bos_token_id").GetInt32(), t.GetProperty("eos_token_id").GetInt32(),
            t.GetProperty("start_of_image").GetInt32(), t.GetProperty("end_of_image").GetInt32());
    }

    [Theory]
    [InlineData("edit_global")]
    [InlineData("edit_text_channel")]
    public void Edit_MatchesTheReference(string scenario)
    {
        JsonElement root = Layout();
        JsonElement s = root.GetProperty("edits").GetProperty(scenario);
        Dictionary<string, Tensor> expected = Expected();
        ImageTransform vaeTransform = Transform(root.GetProperty("vae_transform"));
        ImageTransform vitTransform = Transform(root.GetProperty("vit_transform"));
        RgbImage resized = ResizedInput(expected, vaeTransform);
        using Tensor vaePixels = vaeTransform.Apply(resized);
        using Tensor vitPixels = vitTransform.Apply(resized);
        Assert.Equal(expected[$"{scenario}.vae_pixels"].shape, vaePixels.shape);
        Assert.Equal(expected[$"{scenario}.vit_pixels"].shape, vitPixels.shape);
        ReferenceFixtures.AssertClose(expected[$"{scenario}.vae_pixels"], vaePixels, 1e-6, "VAE transform");
        ReferenceFixtures.AssertClose(expected[$"{scenario}.vit_pixels"], vitPixels, 1e-6, "ViT transform");

        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        int[] prompt = [.. root.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32())];
        var generator = new BagelGenerator(model, vae, null, Tokens(root));
        var replay = new ReplayRandomSource([
            RecordedDraw.FromTensor(expected[$"{scenario}.posterior_noise"]),
            RecordedDraw.FromTensor(expected[$"{scenario}.noise"]),
        ]);
        int steps = 0;
        void Check(FlowStep step)
        {
            string p = $"{scenario}.{step.Index}";
            Assert.Equal(expected[$"{p}.t"].item<float>(), step.Timestep);
            ReferenceFixtures.AssertClose(expected[$"{p}.x"], step.XT, Tolerance, $"{p} x_t");
            ReferenceFixtures.AssertClose(expected[$"{p}.cond"], step.Conditional, Tolerance, $"{p} v (conditional)");
            Assert.Equal(expected.ContainsKey($"{p}.cfg_text"), step.CfgText is not null);
            Assert.Equal(expected.ContainsKey($"{p}.cfg_img"), step.CfgImg is not null);
            if (step.CfgText is { } text) ReferenceFixtures.AssertClose(expected[$"{p}.cfg_text"], text, Tolerance, $"{p} v (cfg_text)");
            if (step.CfgImg is { } img) ReferenceFixtures.AssertClose(expected[$"{p}.cfg_img"], img, Tolerance, $"{p} v (cfg_img)");
            ReferenceFixtures.AssertClose(expected[$"{p}.v"], step.Velocity, Tolerance, $"{p} v (guided)");
            steps++;
        }

        using GeneratedImage result = generator.GenerateImage(
            [new InterleaveInput.Image(new ContextImage(vaePixels, vitPixels)), new InterleaveInput.Text(prompt)],
            Options(s), replay, onStep: Check, cancellationToken: TestContext.Current.CancellationToken);
        replay.EnsureFullyConsumed();
        Assert.Equal(s.GetProperty("steps").GetInt32(), steps);
        Tensor expectedImage = expected[$"{scenario}.image"];
        Assert.Equal(expectedImage.shape, result.Image.shape);
        long worst = result.Image.to(int64).sub(expectedImage).abs().max().item<long>();
        TestContext.Current.TestOutputHelper?.WriteLine($"{scenario} image: max |diff| {worst} (uint8)");
        Assert.True(worst <= 1, $"decoded image differs by up to {worst} levels");
    }

    [Theory]
    [InlineData("edit_global")]
    [InlineData("edit_text_channel")]
    public void Edit_FinalLatent_MatchesTheReference(string scenario)
    {
        // The same run through the context-level API, to compare the final latent itself.
        JsonElement root = Layout();
        JsonElement s = root.GetProperty("edits").GetProperty(scenario);
        Dictionary<string, Tensor> expected = Expected();
        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        int[] prompt = [.. root.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32())];
        var generator = new BagelGenerator(model, vae, null, Tokens(root));
        var replay = new ReplayRandomSource([
            RecordedDraw.FromTensor(expected[$"{scenario}.posterior_noise"]),
            RecordedDraw.FromTensor(expected[$"{scenario}.noise"]),
        ]);
        Tensor vaePixels = expected[$"{scenario}.vae_pixels"], vitPixels = expected[$"{scenario}.vit_pixels"];
        using GenerationContext conditional = generator.CreateContext();
        using GenerationContext cfgImg = generator.CreateContext();
        generator.AppendImage(conditional, new ContextImage(vaePixels, vitPixels), vae: true, vit: true, replay);
        using GenerationContext cfgText = conditional.Clone();
        generator.AppendText(conditional, prompt);
        generator.AppendText(cfgImg, prompt);
        var options = Options(s) with { Height = (int)vaePixels.shape[1], Width = (int)vaePixels.shape[2] };
        using Tensor latent = generator.GenerateLatent(conditional, cfgText, cfgImg, options, replay, null, TestContext.Current.CancellationToken);
        replay.EnsureFullyConsumed();
        double error = ReferenceFixtures.AssertClose(expected[$"{scenario}.latent"], latent, Tolerance, $"{scenario} final latent");
        TestContext.Current.TestOutputHelper?.WriteLine($"{scenario} final latent: relative error {error:E2}");
    }

    [Fact]
    public void GreedyAnswer_MatchesTheReference()
    {
        JsonElement root = Layout();
        Dictionary<string, Tensor> expected = Expected();
        ImageTransform vaeTransform = Transform(root.GetProperty("vae_transform"));
        ImageTransform vitTransform = Transform(root.GetProperty("vit_transform"));
        using Tensor vitPixels = vitTransform.Apply(ResizedInput(expected, vaeTransform));
        ReferenceFixtures.AssertClose(expected["vlm.vit_pixels"], vitPixels, 1e-6, "ViT transform");

        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        int[] prompt = [.. root.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32())];
        GenerationTokenIds tokens = Tokens(root);
        var generator = new BagelGenerator(model, vae, null, tokens);
        int maxLength = root.GetProperty("vlm").GetProperty("max_length").GetInt32();
        var options = new TextGenerationOptions { MaxLength = maxLength, DoSample = false };
        Tensor expectedLogits = expected["vlm.logits"];
        var seen = new List<int>();
        IReadOnlyList<int> ids = generator.Understand(
            [new InterleaveInput.Image(new ContextImage(null, vitPixels)), new InterleaveInput.Text(prompt)], options,
            onStep: step =>
            {
                ReferenceFixtures.AssertClose(expectedLogits[step.Index], step.Logits, Tolerance, $"logits at step {step.Index}");
                seen.Add(step.Index);
            }, cancellationToken: TestContext.Current.CancellationToken);
        long[] reference = [.. expected["vlm.ids"].data<long>()];
        Assert.Equal(tokens.BosTokenId, reference[0]);
        Assert.Equal(reference.Skip(1).Select(i => (int)i), ids);
        Assert.Equal((int)expectedLogits.shape[0], seen.Count);

        // Without the cache: the same tokens, logits equal to the cached run's within float rounding.
        IReadOnlyList<int> uncached = generator.Understand(
            [new InterleaveInput.Image(new ContextImage(null, vitPixels)), new InterleaveInput.Text(prompt)], options with { UseKvCache = false },
            onStep: step => ReferenceFixtures.AssertClose(expectedLogits[step.Index], step.Logits, Tolerance, $"uncached logits at step {step.Index}"),
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(ids, uncached);
    }

    [Fact]
    public void SampledAnswer_IsReproducibleBySeed()
    {
        JsonElement root = Layout();
        Dictionary<string, Tensor> expected = Expected();
        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        var generator = new BagelGenerator(model, vae, null, Tokens(root));
        var options = new TextGenerationOptions { MaxLength = 12, DoSample = true, Temperature = 1.0 };
        InterleaveInput[] inputs = [new InterleaveInput.Image(new ContextImage(null, expected["vlm.vit_pixels"])), new InterleaveInput.Text([5, 6, 7, 8])];
        IReadOnlyList<int> a = generator.Understand(inputs, options, new SeededRandomSource(3UL), cancellationToken: TestContext.Current.CancellationToken);
        IReadOnlyList<int> b = generator.Understand(inputs, options, new SeededRandomSource(3UL), cancellationToken: TestContext.Current.CancellationToken);
        IReadOnlyList<int> greedy = generator.Understand(inputs, options with { DoSample = false }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(a, b);
        Assert.NotEmpty(a);
        Assert.All(a, id => Assert.InRange(id, 0, 39));
        TestContext.Current.TestOutputHelper?.WriteLine($"sampled [{string.Join(", ", a)}], greedy [{string.Join(", ", greedy)}]");
    }

    [Fact]
    public void ThinkMode_PlansWithTheSystemPromptThenGenerates()
    {
        // No reference fixture (the stand-in tokenizer cannot round-trip the plan); this checks the wiring: the think
        // system prompt is encoded, a plan is decoded to text and fed back, and the image still comes out.
        JsonElement root = Layout();
        Dictionary<string, Tensor> expected = Expected();
        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        var encoded = new List<string>();
        var generator = new BagelGenerator(model, vae, text => { encoded.Add(text); return [5, 6]; },
            ids => string.Concat(ids.Select(i => i switch { 36 => "<|im_start|>", 37 => "<|im_end|>", _ => $"t{i} " })), Tokens(root));
        var thinkOptions = new TextGenerationOptions { MaxLength = 4 };
        using GeneratedImage result = generator.GenerateImage(
            [new InterleaveInput.Image(new ContextImage(expected["edit_global.vae_pixels"], expected["edit_global.vit_pixels"])), new InterleaveInput.Text([7, 8])],
            new ImageGenerationOptions { NumTimesteps = 3 }, new SeededRandomSource(1UL), think: true, thinkOptions: thinkOptions,
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(ThinkPrompts.Generation, encoded[0]);
        Assert.NotNull(result.Thinking);
        Assert.Equal(result.Thinking, encoded[^1]); // the plan's text is re-encoded into the conditional context
        Assert.InRange(result.Thinking!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length, 0, 3); // max_length 4 = start token + 3
        Assert.Equal(expected["edit_global.image"].shape, result.Image.shape);

        IReadOnlyList<int> answer = generator.Understand(
            [new InterleaveInput.Image(new ContextImage(null, expected["vlm.vit_pixels"])), new InterleaveInput.Text([5])],
            thinkOptions, think: true, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(ThinkPrompts.Understanding, encoded[^1]);
        Assert.InRange(answer.Count, 0, 3);
    }
}
