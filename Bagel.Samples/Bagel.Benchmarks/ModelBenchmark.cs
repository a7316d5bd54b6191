using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Batching;
using Bagel.Core.Native;
using Bagel.Models.Attention;
using Bagel.Models.Qwen2;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Benchmarks;

/// <summary>
/// CPU figures of the packed Qwen2 MoT backbone: forward+backward time, tokens/s, peak RSS and MFU (the reference's
/// FLOP formula over the matmul FLOP/s this process measures), and the packed per-sample attention against a
/// dense-mask baseline (one N x N mask over the whole pack) at 2k and 4k tokens.
/// Each measurement runs in a fresh child process, so freed memory of an earlier one does not hide a peak.
/// </summary>
internal static class ModelBenchmark
{
    public static int Run(string[] args)
    {
        int tokens = Option(args, "--tokens", 4096);
        int layers = Option(args, "--layers", 4);
        int repeats = Option(args, "--repeats", 2);
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(0);
        Console.WriteLine($"threads {torch.get_num_threads()}, f32 on CPU");

        double peakFlops = MeasureMatmulFlops();
        Console.WriteLine($"matmul 2048x2048 f32: {peakFlops / 1e9:F1} GFLOP/s (the MFU denominator)");

        var config = Config(layers);
        List<SampleLayout> samples = Pack(tokens);
        double flops = TrainingFlops(config, samples);
        var (seconds, peakMiB) = StepInChild(tokens, layers, repeats, checkpointing: false);
        var (ckptSeconds, ckptPeakMiB) = StepInChild(tokens, layers, repeats, checkpointing: true);
        Console.WriteLine($"MoT backbone, hidden 896, {layers} layers, {tokens}-token pack ({samples.Count} samples): " +
                          $"forward+backward {seconds:F2} s, {tokens / seconds:F0} tokens/s, peak RSS {peakMiB:F0} MiB, " +
                          $"{flops / seconds / 1e9:F1} GFLOP/s achieved, MFU {100 * flops / seconds / peakFlops:F1}%");
        Console.WriteLine($"activation checkpointing on: forward+backward {ckptSeconds:F2} s, peak RSS {ckptPeakMiB:F0} MiB " +
                          $"(time ratio on/off {ckptSeconds / seconds:F2}x, peak memory ratio on/off {ckptPeakMiB / peakMiB:F2}x)");

        foreach (int n in new[] { 2048, 4096 })
        {
            var (packedTime, packedMiB) = AttentionInChild(n, dense: false);
            var (denseTime, denseMiB) = AttentionInChild(n, dense: true);
            // Mask memory is deterministic: per-sample boolean masks (sum of L_s^2 bytes) against one float N x N mask
            // plus its boolean source; the measured peak also includes the attention kernels' own buffers and allocator noise.
            double packedMaskMiB = Pack(n).Sum(s => (double)s.Length * s.Length) / 1048576.0;
            double denseMaskMiB = (double)n * n * (sizeof(float) + sizeof(bool)) / 1048576.0;
            Console.WriteLine($"attention fwd+bwd at {n} tokens: packed per-sample {packedTime * 1e3:F0} ms, masks {packedMaskMiB:F1} MiB, measured peak +{packedMiB:F0} MiB; " +
                              $"dense N x N mask {denseTime * 1e3:F0} ms, mask {denseMaskMiB:F1} MiB, measured peak +{denseMiB:F0} MiB " +
                              $"(time dense/packed {denseTime / packedTime:F2}x, mask memory dense/packed {denseMaskMiB / packedMaskMiB:F1}x)");
        }
        return 0;
    }

    private static Qwen2Config Config(int layers) => new Qwen2Config
    {
        HiddenSize = 896, NumHiddenLayers = layers, NumAttentionHeads = 14, NumKeyValueHeads = 2, IntermediateSize = 4864, VocabSize = 151936,
    }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer);

    /// <summary>The hidden subcommand that times forward+backward of the backbone in a fresh process.</summary>
    public const string StepProbeCommand = "model-step-probe";

    public static int RunStepProbe(string[] args)
    {
        int tokens = int.Parse(args[0], CultureInfo.InvariantCulture), layers = int.Parse(args[1], CultureInfo.InvariantCulture);
        int repeats = int.Parse(args[2], CultureInfo.InvariantCulture);
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(0);
        using var model = new Qwen2Model(Config(layers)) { GradientCheckpointing = args[3] == "on" };
        model.train();
        List<SampleLayout> samples = Pack(tokens);
        using var positions = torch.cat([.. samples.Select(s => Positions(s))]);
        var (und, gen) = Routing(samples);
        using var undIndex = torch.tensor(und);
        using var genIndex = torch.tensor(gen);
        double seconds = double.MaxValue;
        for (int r = 0; r <= repeats; r++)
        {
            using var scope = torch.NewDisposeScope();
            var input = torch.randn(tokens, model.Config.HiddenSize).requires_grad_(true);
            var watch = Stopwatch.StartNew();
            var output = model.forward(new Qwen2PackedInput(input, samples, positions, undIndex, genIndex));
            output.square().mean().backward();
            watch.Stop();
            model.zero_grad();
            if (r > 0) seconds = Math.Min(seconds, watch.Elapsed.TotalSeconds); // r = 0 warms up
        }
        Console.WriteLine(FormattableString.Invariant($"{seconds} {ProcessMemory.PeakMiB()}"));
        return 0;
    }

    private static (double Seconds, double PeakMiB) StepInChild(int tokens, int layers, int repeats, bool checkpointing) =>
        Child(StepProbeCommand, tokens.ToString(CultureInfo.InvariantCulture), layers.ToString(CultureInfo.InvariantCulture),
              repeats.ToString(CultureInfo.InvariantCulture), checkpointing ? "on" : "off");

    private static (double, double) Child(params string[] arguments)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in arguments) info.ArgumentList.Add(a);
        using var child = Process.Start(info)!;
        string[] parts = child.StandardOutput.ReadToEnd().Trim().Split(' ');
        child.WaitForExit();
        if (child.ExitCode != 0 || parts.Length != 2) throw new InvalidOperationException($"'{string.Join(' ', arguments)}' failed (exit {child.ExitCode}).");
        return (double.Parse(parts[0], CultureInfo.InvariantCulture), double.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    /// <summary>Samples of 512 tokens: a 30-token caption (causal), a noisy 16x16 latent image (noise), and a 28-token
    /// text plus a 12x12 ViT image (full) in every other sample, filling the pack.</summary>
    private static List<SampleLayout> Pack(int tokens)
    {
        var samples = new List<SampleLayout>();
        int used = 0;
        for (int i = 0; used < tokens; i++)
        {
            int room = tokens - used;
            List<AttentionSplit> splits = i % 2 == 0
                ? [new(32, AttentionMode.Causal), new(258, AttentionMode.Noise), new(222, AttentionMode.Causal)]
                : [new(146, AttentionMode.Full), new(30, AttentionMode.Causal), new(258, AttentionMode.Noise), new(78, AttentionMode.Causal)];
            if (splits.Sum(s => s.Length) > room) splits = [new(room, AttentionMode.Causal)];
            var sample = SampleLayout.FromSplits([.. splits]);
            samples.Add(sample);
            used += sample.Length;
        }
        return samples;
    }

    private static Tensor Positions(SampleLayout sample)
    {
        var ids = new List<long>();
        long rope = 0;
        foreach (AttentionSplit split in sample.Splits)
        {
            if (split.Mode == AttentionMode.Causal)
            {
                for (int i = 0; i < split.Length; i++) ids.Add(rope + i);
                rope += split.Length;
            }
            else
            {
                ids.AddRange(Enumerable.Repeat(rope, split.Length));
                if (split.Mode == AttentionMode.Full) rope++;
            }
        }
        return torch.tensor(ids.ToArray());
    }

    private static (long[] Und, long[] Gen) Routing(IReadOnlyList<SampleLayout> samples)
    {
        var und = new List<long>();
        var gen = new List<long>();
        long at = 0;
        foreach (AttentionSplit split in samples.SelectMany(s => s.Splits))
        {
            // Noise splits hold latent tokens between two vision markers (und); the rest is text or ViT (und).
            for (int i = 0; i < split.Length; i++, at++)
                (split.Mode == AttentionMode.Noise && i > 0 && i < split.Length - 1 ? gen : und).Add(at);
        }
        return ([.. und], [.. gen]);
    }

    /// <summary>
    /// training.md 5.6: 6·N_dense·tokens + 12·head_dim·heads·layers·Σ sample_len². The reference's N_dense also counts
    /// 2·vocab·hidden (embedding and head) for every token; this benchmark runs the backbone only (no head), so that
    /// term is left out here, and each token passes through one expert, so MoT has the dense layer's N.
    /// </summary>
    private static double TrainingFlops(Qwen2Config c, IReadOnlyList<SampleLayout> samples)
    {
        double headDim = (double)c.HiddenSize / c.NumAttentionHeads;
        double attentionProjections = 2.0 * c.HiddenSize * c.HiddenSize + 2.0 * c.HiddenSize * c.NumKeyValueHeads * headDim;
        double dense = c.NumHiddenLayers * (attentionProjections + 3.0 * c.HiddenSize * c.IntermediateSize);
        double tokens = samples.Sum(s => s.Length);
        double squares = samples.Sum(s => (double)s.Length * s.Length);
        return 6 * dense * tokens + 12 * headDim * c.NumAttentionHeads * c.NumHiddenLayers * squares;
    }

    internal static double MeasureMatmulFlops() => MeasureMatmulFlops(torch.CPU, torch.float32);

    /// <summary>
    /// The measured matmul rate (FLOP/s) on <paramref name="device"/> in <paramref name="dtype"/>: square matmuls of
    /// 2048 on the CPU, 8192 on an accelerator (large enough to reach its tensor-core peak), best of five after a
    /// warm-up, synchronised by reading one element back. The MFU denominator, measured in the same process as the step.
    /// </summary>
    internal static double MeasureMatmulFlops(torch.Device device, torch.ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        int n = device.type == DeviceType.CPU ? 2048 : 8192;
        var a = torch.randn(n, n, device: device).to(dtype);
        var b = torch.randn(n, n, device: device).to(dtype);
        Sync(a.matmul(b));
        double best = double.MaxValue;
        const int Repeats = 5;
        for (int i = 0; i < Repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            Sync(a.matmul(b));
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best;

        static void Sync(torch.Tensor c)
        {
            using torch.Tensor first = c[0, 0].to(torch.float32).cpu();
            _ = first.item<float>();
            c.Dispose();
        }
    }

    /// <summary>The hidden subcommand that measures one attention variant in a fresh process (so freed memory of
    /// earlier runs does not hide its peak).</summary>
    public const string AttentionProbeCommand = "model-attention-probe";

    public static int RunAttentionProbe(string[] args)
    {
        TorchRuntime.EnsureLoaded();
        torch.manual_seed(0);
        Attention(int.Parse(args[0], CultureInfo.InvariantCulture), dense: false); // warm-up: libtorch's own first-use allocations
        var (seconds, peak) = Attention(int.Parse(args[0], CultureInfo.InvariantCulture), args[1] == "dense");
        Console.WriteLine(FormattableString.Invariant($"{seconds} {peak}"));
        return 0;
    }

    private static (double Seconds, double PeakMiB) AttentionInChild(int tokens, bool dense) =>
        Child(AttentionProbeCommand, tokens.ToString(CultureInfo.InvariantCulture), dense ? "dense" : "packed");

    private static (double Seconds, double PeakMiB) Attention(int tokens, bool dense)
    {
        const int Heads = 14, KvHeads = 2, HeadDim = 64;
        List<SampleLayout> samples = Pack(tokens);
        using var scope = torch.NewDisposeScope();
        var q = torch.randn(tokens, Heads, HeadDim).requires_grad_(true);
        var k = torch.randn(tokens, KvHeads, HeadDim).requires_grad_(true);
        var v = torch.randn(tokens, KvHeads, HeadDim).requires_grad_(true);
        double baseline = ProcessMemory.ResetPeak();
        var watch = Stopwatch.StartNew();
        Tensor output;
        if (dense)
        {
            // The baseline a naive port would use: one additive float mask over the whole pack.
            var allowed = torch.zeros(tokens, tokens, ScalarType.Bool);
            long start = 0;
            foreach (SampleLayout s in samples)
            {
                allowed.narrow(0, start, s.Length).narrow(1, start, s.Length).copy_(AttentionMasks.BuildDense(s));
                start += s.Length;
            }
            var mask = torch.zeros(tokens, tokens).masked_fill(allowed.logical_not(), float.NegativeInfinity);
            var query = q.transpose(0, 1).unsqueeze(0);
            var key = k.repeat_interleave(Heads / KvHeads, dim: 1).transpose(0, 1).unsqueeze(0);
            var value = v.repeat_interleave(Heads / KvHeads, dim: 1).transpose(0, 1).unsqueeze(0);
            output = torch.nn.functional.scaled_dot_product_attention(query, key, value, mask).squeeze(0).transpose(0, 1).reshape(tokens, Heads * HeadDim);
        }
        else
        {
            using var packed = PackedAttentionMask.Build(samples, torch.CPU);
            output = PackedScaledDotProductAttention.Forward(q, k, v, packed);
        }
        output.sum().backward();
        watch.Stop();
        return (watch.Elapsed.TotalSeconds, ProcessMemory.PeakMiB() - baseline);
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
