using System.Text.Json;
using Bagel.Core.Randomness;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Tests.Models.FluxVae;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Generation;

/// <summary>
/// Text-to-image sampling against the reference's own inferencer (Fixtures/Generation, made by its make_fixtures.py):
/// a tiny MoT BAGEL and the tiny FLUX autoencoder, the reference's initial noise replayed; every step's x_t, the raw
/// branch velocities and the guided velocity, the final latent and the decoded uint8 image are compared, for each
/// cfg_renorm_type and with and without the image branch.
/// </summary>
public sealed class TextToImageReferenceTests
{
    private static readonly string Directory = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Generation");

    /// <summary>Relative tolerance (max |diff| / max |expected|) for the f32 sampler tensors.</summary>
    private const double Tolerance = 1e-4;

    private static Dictionary<string, Tensor> Expected()
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(Path.Combine(Directory, "expected.safetensors"));
        return reader.Tensors.ToDictionary(t => t.Name, t => reader.ReadTensor(t.Name));
    }

    private static BagelModel Model()
    {
        var config = new BagelConfig
        {
            VisualGen = true,
            VisualUnd = false,
            LlmConfig = Qwen2Fixtures.Tiny(),
            VaeConfig = ReferenceFixtures.TinyConfig(),
            MaxLatentSize = 4,
        };
        var model = new BagelModel(config);
        StateDictLoadReport report = BagelCheckpointLoader.LoadBagel(model, Path.Combine(Directory, "weights.safetensors"),
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Empty(report.UnexpectedKeys);
        model.eval();
        return model;
    }

    private static ImageGenerationOptions Options(JsonElement s, int height, int width) => new()
    {
        Height = height,
        Width = width,
        CfgTextScale = s.GetProperty("cfg_text_scale").GetDouble(),
        CfgImgScale = s.GetProperty("cfg_img_scale").GetDouble(),
        CfgInterval = (s.GetProperty("cfg_interval")[0].GetDouble(), s.GetProperty("cfg_interval")[1].GetDouble()),
        TimestepShift = s.GetProperty("timestep_shift").GetDouble(),
        NumTimesteps = s.GetProperty("num_timesteps").GetInt32(),
        CfgRenormMin = s.GetProperty("cfg_renorm_min").GetDouble(),
        CfgRenormType = s.GetProperty("cfg_renorm_type").GetString() switch
        {
            "global" => CfgRenormType.Global,
            "channel" => CfgRenormType.Channel,
            "text_channel" => CfgRenormType.TextChannel,
            var other => throw new InvalidDataException($"Unknown cfg_renorm_type {other}"),
        },
    };

    [Theory]
    [InlineData("global")]
    [InlineData("channel")]
    [InlineData("text_channel")]
    [InlineData("text_only")]
    public void Sampler_MatchesTheReference(string scenario)
    {
        using JsonDocument layout = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "layout.json")));
        JsonElement root = layout.RootElement;
        JsonElement tokens = root.GetProperty("new_token_ids");
        int[] prompt = [.. root.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32())];
        int height = root.GetProperty("image_shape")[0].GetInt32(), width = root.GetProperty("image_shape")[1].GetInt32();
        JsonElement s = root.GetProperty("scenarios").GetProperty(scenario);
        ImageGenerationOptions options = Options(s, height, width);
        Dictionary<string, Tensor> expected = Expected();

        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        var generator = new BagelGenerator(model, vae, null, new GenerationTokenIds(
            tokens.GetProperty("bos_token_id").GetInt32(), tokens.GetProperty("eos_token_id").GetInt32(),
            tokens.GetProperty("start_of_image").GetInt32(), tokens.GetProperty("end_of_image").GetInt32()));
        var replay = new ReplayRandomSource([RecordedDraw.FromTensor(expected[$"{scenario}.noise"])]);

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

        using GenerationContext conditional = generator.CreateContext();
        using GenerationContext cfgText = generator.CreateContext();
        generator.AppendText(conditional, prompt);
        using GenerationContext cfgImg = conditional.Clone();
        using Tensor latent = generator.GenerateLatent(conditional, cfgText, cfgImg, options, replay, Check,
            TestContext.Current.CancellationToken);
        replay.EnsureFullyConsumed();
        Assert.Equal(s.GetProperty("steps").GetInt32(), steps);
        ReferenceFixtures.AssertClose(expected[$"{scenario}.latent"], latent, Tolerance, $"{scenario} final latent");

        using Tensor image = generator.DecodeImage(latent, height, width);
        Tensor expectedImage = expected[$"{scenario}.image"];
        Assert.Equal(expectedImage.shape, image.shape);
        long worst = image.to(int64).sub(expectedImage).abs().max().item<long>();
        TestContext.Current.TestOutputHelper?.WriteLine($"{scenario} image: max |diff| {worst} (uint8)");
        Assert.True(worst <= 1, $"decoded image differs by up to {worst} levels");
    }

    [Fact]
    public void TextToImage_EndToEnd_MatchesTheReference()
    {
        // The whole entry point on the "global" scenario: same image as the step-by-step run.
        using JsonDocument layout = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "layout.json")));
        JsonElement root = layout.RootElement;
        int height = root.GetProperty("image_shape")[0].GetInt32(), width = root.GetProperty("image_shape")[1].GetInt32();
        ImageGenerationOptions options = Options(root.GetProperty("scenarios").GetProperty("global"), height, width);
        Dictionary<string, Tensor> expected = Expected();
        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        int[] prompt = [.. root.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32())];
        var generator = new BagelGenerator(model, vae, text => prompt, new GenerationTokenIds(36, 37, 38, 39));
        var replay = new ReplayRandomSource([RecordedDraw.FromTensor(expected["global.noise"])]);

        using Tensor image = generator.TextToImage("a prompt", options, replay, TestContext.Current.CancellationToken);
        replay.EnsureFullyConsumed();
        long worst = image.to(int64).sub(expected["global.image"]).abs().max().item<long>();
        Assert.True(worst <= 1, $"decoded image differs by up to {worst} levels");
        Assert.Equal(ScalarType.Byte, image.dtype);
    }

    [Fact]
    public void Sampling_StopsWhenCancelled()
    {
        using BagelModel model = Model();
        using FluxAutoEncoder vae = ReferenceFixtures.LoadTinyVae();
        var generator = new BagelGenerator(model, vae, null, new GenerationTokenIds(36, 37, 38, 39));
        using var cts = new CancellationTokenSource();
        var options = new ImageGenerationOptions { Height = 12, Width = 16, NumTimesteps = 10 };
        int seen = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            using Tensor image = generator.TextToImage([5, 6], options, new SeededRandomSource(1UL),
                step => { seen++; if (step.Index == 1) cts.Cancel(); }, cts.Token);
        });
        Assert.Equal(2, seen);
    }
}
