using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Native;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Benchmarks;

/// <summary>
/// Issue 6, point 2: TorchSharp's AdamW runs about nine element-wise kernels per parameter tensor, with two
/// temporaries the size of the tensor. This times its step and zero_grad against <see cref="FlatBufferAdamW"/> on every
/// trainable parameter of a composite (random gradients), with libtorch's operations over the flat buffers and with its fused pass, and the per-parameter EMA update and clipping against the
/// same operation on one flat buffer (not implemented in the library: shown to decide whether it would matter), on the
/// tiny and the small config. On the tiny config it also checks that both optimizers give bit-identical weights.
/// </summary>
internal static class OptimizerComparison
{
    private const int Repeats = 3;

    /// <summary>Chunk sizes (elements) tried for the flat step: L2-sized to L3-sized per buffer.</summary>
    private static readonly long[] ChunkSizes = [1 << 15, 1 << 16, 1 << 18, 1 << 20];

    public static int Run(string tokenizerFolder, int layers)
    {
        TorchRuntime.EnsureLoaded();
        int vocabulary = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(tokenizerFolder, NullLogger.Instance)).Tokenizer.Count;
        Compare("tiny composite", TrainSetup.TinyConfig(vocabulary), check: true);
        Compare($"small composite (hidden 896, {layers} layers)", TrainSetup.SmallConfig(vocabulary, layers), check: false);
        return 0;
    }

    private static void Compare(string name, BagelConfig config, bool check)
    {
        torch.manual_seed(0);
        using var model = new BagelModel(config);
        using var noGrad = torch.no_grad();
        Parameter[] parameters = [.. model.parameters().Where(p => p.requires_grad)];
        long count = parameters.Sum(p => p.numel());
        foreach (Parameter p in parameters) p.grad = torch.randn_like(p).mul_(1e-3);
        var options = new AdamWOptions();

        // Per parameter: TorchSharp's AdamW, the library's EMA update, clipping and zero_grad.
        Tensor[] emaTensors = [.. parameters.Select(p => p.detach().clone())];
        double adamW, ema, clip, zero;
        using (AdamW optimizer = AdamWFactory.Create([new ParameterGroup("all", parameters)], options))
        {
            adamW = Time(() => optimizer.step());
            (Tensor, Tensor)[] pairs = [.. emaTensors.Zip(parameters, (e, p) => (e, (Tensor)p))];
            ema = Time(() => EmaUpdate.Apply(pairs, EmaModel.DefaultDecay));
            clip = Time(() => GradientClipping.ClipGradNorm(parameters, 1e9));
            zero = Time(() => optimizer.zero_grad());
        }
        foreach (Tensor e in emaTensors) e.Dispose();

        // Flat: the library's FlatBufferAdamW on the same parameters (it moves them into its buffers).
        foreach (Parameter p in parameters)
        {
            using Tensor? grad = p.grad;
            grad!.normal_().mul_(1e-3);
        }
        double flatAdamW = double.MaxValue, flatZero = 0, flatEma, flatClip;
        var chunkTimes = new List<string>();
        foreach (long chunk in ChunkSizes)
        {
            using var flat = new FlatBufferAdamW([new AdamW.ParamGroup(parameters, lr: options.LearningRate, beta1: options.Beta1, beta2: options.Beta2, eps: options.Eps)],
                options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay, chunk, fusedKernel: false);
            double seconds = Time(() => flat.step());
            chunkTimes.Add(string.Create(CultureInfo.InvariantCulture, $"{chunk / 1024} Ki: {seconds * 1e3:F1}"));
            if (flat.FallbackSteps > 0) Console.WriteLine($"  (FlatBufferAdamW fell back to per-parameter steps {flat.FallbackSteps} times)");
            if (seconds < flatAdamW) (flatAdamW, flatZero) = (seconds, Time(() => flat.zero_grad()));
        }
        double fusedAdamW;
        using (var fused = new FlatBufferAdamW([new AdamW.ParamGroup(parameters, lr: options.LearningRate, beta1: options.Beta1, beta2: options.Beta2, eps: options.Eps)],
                   options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay))
        {
            fusedAdamW = Time(() => fused.step());
            if (fused.FusedKernelBucketSteps == 0) Console.WriteLine($"  (the fused pass did not run: {FlatBufferAdamW.FusedKernelUnavailableReason})");
        }
        using (Tensor flatParameters = torch.cat([.. parameters.Select(p => p.detach().reshape(-1))]))
        using (Tensor flatEmaBuffer = flatParameters.clone())
        {
            flatEma = Time(() => flatEmaBuffer.mul_(EmaModel.DefaultDecay).add_(flatParameters, alpha: 1 - EmaModel.DefaultDecay));
            flatClip = Time(() => flatParameters.norm().item<float>()); // the norm of a buffer of the same size stands in for the flat gradient's
        }

        Console.WriteLine($"optimizer, {name}: {count / 1e6:F1} M trainable parameters in {parameters.Length} tensors; per tensor vs flat, best of {Repeats} after a warm-up, ms:");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  AdamW step {adamW * 1e3:F1} vs FlatBufferAdamW with libtorch's operations {flatAdamW * 1e3:F1} ({adamW / flatAdamW:F2}x; by chunk elements {string.Join(", ", chunkTimes)}; default {FlatBufferAdamW.DefaultChunkElements / 1024} Ki) vs its fused pass {fusedAdamW * 1e3:F1} ({adamW / fusedAdamW:F2}x); zero_grad {zero * 1e3:F1} vs {flatZero * 1e3:F1} ({zero / flatZero:F2}x); not in the library: EMA {ema * 1e3:F1} vs one flat buffer {flatEma * 1e3:F1} ({ema / flatEma:F2}x), clip norm {clip * 1e3:F1} vs {flatClip * 1e3:F1} ({clip / flatClip:F2}x)"));
        if (check) Console.WriteLine($"  FlatBufferAdamW weights bit-identical to TorchSharp's AdamW after 5 steps: {BitIdentical(config)}");
    }

    /// <summary>Two copies of the model, five steps with the same random gradients, one optimizer each; compares every weight.</summary>
    private static bool BitIdentical(BagelConfig config)
    {
        var models = new List<BagelModel>();
        var optimizers = new List<AdamW>();
        try
        {
            foreach (bool flat in new[] { false, true })
            {
                torch.manual_seed(0);
                var model = new BagelModel(config);
                models.Add(model);
                optimizers.Add(AdamWFactory.Create(model, new AdamWOptions { FlatBuffers = flat, WeightDecay = 0.01 }));
            }
            for (int step = 0; step < 5; step++)
            {
                for (int m = 0; m < 2; m++)
                {
                    var generator = new torch.Generator((ulong)(100 + step));
                    foreach (Parameter p in models[m].parameters().Where(p => p.requires_grad))
                    {
                        using Tensor? grad = p.grad;
                        using Tensor random = torch.randn(p.shape, generator: generator);
                        if (grad is null) p.grad = random.clone();
                        else grad.copy_(random);
                    }
                    optimizers[m].step();
                    optimizers[m].zero_grad();
                }
            }
            return models[0].parameters().Zip(models[1].parameters()).All(pair => pair.First.Equals(pair.Second));
        }
        finally
        {
            foreach (AdamW o in optimizers) o.Dispose();
            foreach (BagelModel m in models) m.Dispose();
        }
    }

    /// <summary>Best of <see cref="Repeats"/> timed calls after one warm-up call, in seconds.</summary>
    private static double Time(Action action)
    {
        action();
        double best = double.MaxValue;
        for (int r = 0; r < Repeats; r++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }
}
