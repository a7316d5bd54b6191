using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Native;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Models.Qwen2;
using TorchSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// Text-to-image seconds per image on the CPU with and without the prefix KV cache
/// (<see cref="ImageGenerationOptions.UsePrefixCache"/>): a small random MoT BAGEL (hidden 512, 4 layers by default),
/// a FLUX-shaped VAE, 256×256 px, 25 timesteps, the reference inferencer's guidance (text 3.0 and image 1.5: three
/// branches per step inside the interval). Without the cache every branch prefills its context again at every step,
/// so the saving grows with the prefix: it is measured for a short prompt and for a long one (an edit's prefix holds
/// the input image's tokens too). Random weights: the time, not the picture, is the point.
/// </summary>
internal static class GenerateBenchmark
{
    public static int Run(string[] args)
    {
        int size = Option(args, "--size", 256), steps = Option(args, "--steps", 25), layers = Option(args, "--layers", 4);
        int hidden = Option(args, "--hidden", 512), repeats = Option(args, "--repeats", 1);
        int[] prompts = [Option(args, "--prompt-tokens", 32), Option(args, "--long-prompt-tokens", 256)];
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(0);
        const int perToken = 16; // VAE ×8, latent patch 2
        if (size % perToken != 0) throw new ArgumentException($"--size {size} must be a multiple of {perToken}.");
        var config = new BagelConfig
        {
            VisualGen = true,
            VisualUnd = false,
            LlmConfig = new Qwen2Config
            {
                HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = hidden / 64, NumKeyValueHeads = 2, IntermediateSize = 4 * hidden, VocabSize = 4096,
            }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
            VaeConfig = new FluxVaeConfig(3, 64, 3, [1, 2, 2, 2], 1, 16, 0.3611, 0.1159),
            MaxLatentSize = size / perToken,
        };
        using var model = new BagelModel(config);
        using var vae = new FluxAutoEncoder(config.VaeConfig);
        model.eval();
        var generator = new BagelGenerator(model, vae, null, new GenerationTokenIds(1, 2, 3, 4));
        var options = new ImageGenerationOptions { Height = size, Width = size, NumTimesteps = steps };
        long parameters = model.parameters().Sum(p => p.numel());
        Console.WriteLine($"threads {torch.get_num_threads()}, f32 on CPU; MoT BAGEL hidden {hidden}, {layers} layers ({parameters / 1e6:F1} M parameters), " +
                          $"VAE ch 64; {size}x{size} px = {size / perToken * (size / perToken)} latent tokens; {steps} timesteps ({steps - 1} Euler steps), " +
                          $"cfg_text_scale {options.CfgTextScale}, cfg_img_scale {options.CfgImgScale}, cfg_interval ({options.CfgInterval.Lo}, {options.CfgInterval.Hi})");

        using (var warm = new SeededRandomSource(1)) generator.TextToImage(Prompt(8), options with { NumTimesteps = 2 }, warm).Dispose();
        foreach (int promptTokens in prompts)
        {
            double cached = Time(generator, Prompt(promptTokens), options, repeats);
            double fresh = Time(generator, Prompt(promptTokens), options with { UsePrefixCache = false }, repeats);
            Console.WriteLine($"prompt of {promptTokens} tokens: {cached:F2} s/image with the prefix KV cache, {fresh:F2} s/image recomputing the prefix " +
                              $"every step and branch: cache speed-up {fresh / cached:F2}x");
        }
        return 0;
    }

    private static int[] Prompt(int tokens) => [.. Enumerable.Range(0, tokens).Select(i => 10 + i % 4000)];

    /// <summary>Best wall time of <paramref name="repeats"/> images (sampling and VAE decode).</summary>
    private static double Time(BagelGenerator generator, int[] prompt, ImageGenerationOptions options, int repeats)
    {
        double best = double.MaxValue;
        for (int r = 0; r < repeats; r++)
        {
            using var noise = new SeededRandomSource(7);
            long start = Stopwatch.GetTimestamp();
            generator.TextToImage(prompt, options, noise).Dispose();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
