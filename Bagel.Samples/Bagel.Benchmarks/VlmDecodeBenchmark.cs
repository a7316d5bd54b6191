using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Native;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Benchmarks;

/// <summary>
/// VLM answering speed on CPU: greedy decoding tokens/s of <see cref="BagelGenerator.Understand"/> with the prefix and
/// the decoded tokens kept in the KV cache (the reference's way) against recomputing the whole sequence (image, question
/// and the tokens so far) for every new token. A randomly initialised model (eos is never predicted, so every run decodes
/// the same number of tokens); both runs must produce the same tokens.
/// </summary>
internal static class VlmDecodeBenchmark
{
    public static int Run(string[] args)
    {
        int tokens = Option(args, "--tokens", 64);
        int hidden = Option(args, "--hidden", 512);
        int layers = Option(args, "--layers", 4);
        int imageSide = Option(args, "--image", 224);
        int question = Option(args, "--question", 32);
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(0);
        var config = new BagelConfig
        {
            LlmConfig = new Qwen2Config
            {
                HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = hidden / 64, NumKeyValueHeads = Math.Max(1, hidden / 256),
                IntermediateSize = hidden * 4, VocabSize = 8192,
            }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
            VitConfig = new SiglipVisionConfig { HiddenSize = 128, IntermediateSize = 256, NumHiddenLayers = 3, NumAttentionHeads = 2, ImageSize = 980, PatchSize = 14 }.WithBagelOverrides(),
            VaeConfig = new FluxVaeConfig(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159),
            MaxLatentSize = 4,
        };
        using var model = new BagelModel(config);
        using var vae = new FluxAutoEncoder(config.VaeConfig);
        model.eval();
        // eos = 4 with a zero lm_head row: its logit is 0 while the largest of 8191 random logits is positive, so it is
        // never predicted and both runs decode exactly `tokens` tokens.
        using (torch.no_grad()) model.LanguageModel.LmHead.weight![4].zero_();
        var generator = new BagelGenerator(model, vae, null, new GenerationTokenIds(1, 4, 2, 3));
        using Tensor pixels = torch.rand(3, imageSide / 14 * 14, imageSide / 14 * 14).mul(2).sub(1);
        InterleaveInput[] inputs =
        [
            new InterleaveInput.Image(new ContextImage(null, pixels)),
            new InterleaveInput.Text([.. Enumerable.Range(10, question)]),
        ];
        int vitTokens = (imageSide / 14) * (imageSide / 14);
        Console.WriteLine($"threads {torch.get_num_threads()}, f32 on CPU; MoT LLM hidden {hidden}, {layers} layers; prefix: {vitTokens} ViT tokens " +
                          $"({imageSide / 14 * 14} px) + {question + 2} text tokens; {tokens} decoded tokens (max_length {tokens + 1})");
        var options = new TextGenerationOptions { MaxLength = tokens + 1, DoSample = false };

        generator.Understand(inputs, options with { MaxLength = 3 }); // warm-up
        var clock = Stopwatch.StartNew();
        IReadOnlyList<int> cached = generator.Understand(inputs, options);
        double cachedSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        IReadOnlyList<int> uncached = generator.Understand(inputs, options with { UseKvCache = false });
        double uncachedSeconds = clock.Elapsed.TotalSeconds;
        bool same = cached.SequenceEqual(uncached);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"with KV cache: {cachedSeconds:F2} s, {cached.Count / cachedSeconds:F1} tokens/s (prefill included)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"without cache (recompute image + question + tokens per token): {uncachedSeconds:F2} s, {uncached.Count / uncachedSeconds:F1} tokens/s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"speed-up with the cache: {uncachedSeconds / cachedSeconds:F1}x; same tokens: {same}"));
        return same ? 0 : 1;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
