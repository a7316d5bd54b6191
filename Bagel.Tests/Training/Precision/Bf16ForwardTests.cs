using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.CustomLoop;
using Bagel.Models.Bagel;
using Bagel.Models.Common;
using Bagel.Models.FluxVae;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Precision;
using Bagel.Training.Recipes;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Tests.Training.Precision;

/// <summary>
/// The tiny BAGEL's training forward in bf16 mixed precision (the working copy of the same float32 weights) against
/// fp32 on one packed batch of the example data, and the reference's float32 islands inside it: each island is switched
/// off through its seam (<see cref="PrecisionIslands"/>) and the bf16 forward measurably drifts further from fp32, so a
/// test fails if the island is removed from the production code.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class Bf16ForwardTests(ITestOutputHelper output)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Per-token CE and per-token MSE (channel mean) of one forward, as float64 arrays.</summary>
    private sealed record TokenLosses(double[] Ce, double[] Mse);

    private sealed class Setup : IDisposable
    {
        public required BagelModel Model { get; init; }
        public required FluxAutoEncoder Vae { get; init; }
        public required BagelConfig Config { get; init; }
        public required PackedBatch Batch { get; init; }
        public required TempDirectory Folder { get; init; }

        public void Dispose()
        {
            Batch.Dispose();
            Model.Dispose();
            Vae.Dispose();
            Folder.Dispose();
        }
    }

    private static async Task<Setup> CreateAsync()
    {
        var folder = new TempDirectory();
        using TinyRun run = await TinyRun.CreateAsync(Path.Combine(folder.Path, "data"), Path.Combine(folder.Path, "ckpt"), 1, 1000, NullLogger.Instance, Ct);
        PackedBatch batch;
        await using (IAsyncEnumerator<PackedBatch> batches = run.Data.ReadAsync(cancellationToken: Ct).GetAsyncEnumerator(Ct))
        {
            Assert.True(await batches.MoveNextAsync());
            batch = batches.Current;
        }
        Assert.NotNull(batch.Vae);
        Assert.NotNull(batch.TextLoss);
        BagelConfig config = run.Model.Model.Config;
        torch.manual_seed(11);
        var model = new BagelModel(config);
        var vae = new FluxAutoEncoder(config.VaeConfig!);
        return new Setup { Model = model, Vae = vae, Config = config, Batch = batch, Folder = folder };
    }

    /// <summary>One forward with noise from a fresh seeded source (the same draws in both precisions).</summary>
    private static TokenLosses Forward(Setup setup, bool bf16)
    {
        using var noise = new SeededRandomSource(5);
        var master = new BagelTrainingModel(setup.Model, setup.Vae, () => new BagelModel(setup.Config), noise);
        using IPrecisionPolicy policy = PrecisionPolicies.Create(bf16 ? TrainingPrecision.Bf16Mixed : TrainingPrecision.Fp32, master);
        policy.BeforeForward();
        policy.ComputeModel.Module.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        ModelLossOutputs outputs = policy.ComputeModel.Forward(setup.Batch);
        Assert.Equal(ScalarType.Float32, outputs.CePerToken!.dtype);
        Assert.Equal(ScalarType.Float32, outputs.MseSquaredError!.dtype);
        double[] ce = outputs.CePerToken.to(ScalarType.Float64).data<double>().ToArray();
        double[] mse = outputs.MseSquaredError.mean([1]).to(ScalarType.Float64).data<double>().ToArray();
        return new TokenLosses(ce, mse);
    }

    private static (double Max, double Mean) Relative(double[] reference, double[] other)
    {
        double[] rel = [.. reference.Zip(other, (a, b) => Math.Abs(b - a) / Math.Abs(a))];
        return (rel.Max(), rel.Average());
    }

    private static double MeanAbs(double[] reference, double[] other) => reference.Zip(other, (a, b) => Math.Abs(b - a)).Average();

    [Fact]
    public async Task Bf16PerTokenLossesAreWithinThreePercentOfFp32()
    {
        using Setup setup = await CreateAsync();
        TokenLosses fp32 = Forward(setup, bf16: false);
        TokenLosses bf16 = Forward(setup, bf16: true);
        (double ceMax, double ceMean) = Relative(fp32.Ce, bf16.Ce);
        (double mseMax, double mseMean) = Relative(fp32.Mse, bf16.Mse);
        output.WriteLine($"{fp32.Ce.Length} CE tokens: relative difference max {ceMax:E2}, mean {ceMean:E2}; " +
                         $"{fp32.Mse.Length} MSE tokens: max {mseMax:E2}, mean {mseMean:E2}");
        Assert.True(ceMax <= 3e-2, $"CE per token: max relative difference {ceMax:E2}");
        Assert.True(mseMax <= 3e-2, $"MSE per token: max relative difference {mseMax:E2}");
        Assert.True(ceMean > 0 && mseMean > 0, "the bf16 forward equals fp32 exactly: it did not run in bf16");
    }

    [Fact]
    public async Task TheLossUpcastIslandKeepsTheCeCloserToFp32()
    {
        using Setup setup = await CreateAsync();
        TokenLosses fp32 = Forward(setup, bf16: false);
        TokenLosses with = Forward(setup, bf16: true);
        TokenLosses without;
        PrecisionIslands.t_noLossUpcast = true;
        try
        {
            without = Forward(setup, bf16: true);
        }
        finally
        {
            PrecisionIslands.t_noLossUpcast = false;
        }
        double errWith = MeanAbs(fp32.Ce, with.Ce), errWithout = MeanAbs(fp32.Ce, without.Ce);
        output.WriteLine($"CE mean |bf16 − fp32|: with the float32 loss {errWith:E2}, without {errWithout:E2}");
        Assert.True(errWith < 0.75 * errWithout, $"with {errWith:E3}, without {errWithout:E3}");
    }

    private static bool Same(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }

    /// <summary>Elements of <paramref name="a"/> and <paramref name="b"/> that differ, as a fraction.</summary>
    private static double DifferingFraction(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return a.ne(b).to(ScalarType.Float64).mean().item<double>();
    }

    [Fact]
    public void TheRmsNormComputesItsVarianceInFloat32AndCastsBeforeTheWeight()
    {
        torch.manual_seed(3);
        using var norm = new Bagel.Models.Qwen2.Qwen2RMSNorm(896, 1e-6);
        using (torch.no_grad()) norm.Weight.uniform_(0.5, 1.5);
        norm.to(ScalarType.BFloat16);
        using var scope = torch.NewDisposeScope();
        Tensor x = torch.randn(64, 896).mul(40).add(7).to(ScalarType.BFloat16);
        // The reference (model.md §2.4): xf in float32, mean square and rsqrt in float32, cast to bf16, then × weight in bf16.
        Tensor xf = x.to(ScalarType.Float32);
        Tensor expected = norm.Weight.mul(xf.mul(xf.pow(2).mean([-1], keepdim: true).add(1e-6).rsqrt()).to(ScalarType.BFloat16));
        Tensor ours = norm.forward(x);
        Tensor without;
        PrecisionIslands.t_noRmsNormVariance = true;
        try
        {
            without = norm.forward(x);
        }
        finally
        {
            PrecisionIslands.t_noRmsNormVariance = false;
        }
        double differing = DifferingFraction(without, expected);
        output.WriteLine($"RMSNorm in bf16: equal to the float32-island formula; without the island {differing:P1} of the outputs differ");
        Assert.True(Same(ours, expected), "the bf16 RMSNorm is not the reference's float32-variance formula");
        Assert.True(differing > 0.05, $"only {differing:P2} differ without the island: the seam does not reach it");
    }

    [Fact]
    public void TheTimestepEmbedderTakesFloat32FrequenciesIntoItsBf16Mlp()
    {
        torch.manual_seed(4);
        using var embedder = new TimestepEmbedder(64);
        embedder.to(ScalarType.BFloat16);
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        Tensor t = torch.rand(512);
        Tensor[] w = [.. embedder.parameters()];
        Tensor Mlp(Tensor e) => nn.functional.linear(nn.functional.silu(nn.functional.linear(e, w[0], w[1])), w[2], w[3]);
        // The reference (model.md §4.3, §10): t, the frequencies and cos/sin in float32, then bf16 into the MLP.
        Tensor expected = Mlp(TimestepEmbedder.FrequencyEmbedding(t).to(ScalarType.BFloat16));
        Tensor ours = embedder.forward(t);
        Tensor without;
        PrecisionIslands.t_noTimestepEmbedding = true;
        try
        {
            without = embedder.forward(t);
        }
        finally
        {
            PrecisionIslands.t_noTimestepEmbedding = false;
        }
        double differing = DifferingFraction(without, expected);
        double errWithout = without.to(ScalarType.Float32).sub(expected.to(ScalarType.Float32)).abs().mean().item<float>();
        output.WriteLine($"Timestep embedder in bf16: equal to the float32-island formula; without the island {differing:P1} of the outputs differ (mean |Δ| {errWithout:E2})");
        Assert.True(Same(ours, expected), "the bf16 timestep embedder does not take float32 frequencies");
        Assert.True(differing > 0.05, $"only {differing:P2} differ without the island: the seam does not reach it");
    }

    [Theory]
    [InlineData(false)] // a purely causal sample: torch's is_causal kernel
    [InlineData(true)] // a sample with a full-attention split: the additive-mask kernel
    public void TheAttentionSoftmaxRunsInFloat32InsideTheBf16Kernel(bool withMask)
    {
        torch.manual_seed(5);
        const int length = 256, heads = 4, headDim = 64;
        using var scope = torch.NewDisposeScope();
        SampleLayout sample = withMask
            ? new SampleLayout(length, [new AttentionSplit(length / 2, AttentionMode.Causal), new AttentionSplit(length / 2, AttentionMode.Full)])
            : new SampleLayout(length, [new AttentionSplit(length, AttentionMode.Causal)]);
        using var mask = Bagel.Models.Attention.PackedAttentionMask.Build([sample], torch.CPU);
        Tensor q = torch.randn(length, heads, headDim).mul(3), k = torch.randn(length, heads, headDim).mul(3), v = torch.randn(length, heads, headDim);
        Tensor truth = Bagel.Models.Attention.PackedScaledDotProductAttention.Forward(q, k, v, mask).to(ScalarType.Float64);
        Tensor qb = q.to(ScalarType.BFloat16), kb = k.to(ScalarType.BFloat16), vb = v.to(ScalarType.BFloat16);
        Tensor ours = Bagel.Models.Attention.PackedScaledDotProductAttention.Forward(qb, kb, vb, mask).to(ScalarType.Float64);
        // The same attention with the softmax (and its sums) in bf16: no float32 island.
        Tensor scores = qb.transpose(0, 1).matmul(kb.transpose(0, 1).transpose(1, 2)).mul(1.0 / Math.Sqrt(headDim));
        Tensor allowed = AttentionMasks.BuildDense(sample, torch.CPU);
        Tensor probabilities = scores.masked_fill(allowed.logical_not(), float.NegativeInfinity).softmax(-1, ScalarType.BFloat16);
        Tensor noIsland = probabilities.matmul(vb.transpose(0, 1)).transpose(0, 1).reshape(length, heads * headDim).to(ScalarType.Float64);
        double errWith = ours.sub(truth).abs().mean().item<double>(), errWithout = noIsland.sub(truth).abs().mean().item<double>();
        output.WriteLine($"Attention in bf16 (mask: {withMask}), mean |error| against fp32: our kernel {errWith:E3}, softmax in bf16 {errWithout:E3}");
        Assert.True(errWith < 0.75 * errWithout, $"with {errWith:E3}, without {errWithout:E3}");
    }

    [Fact]
    public void TheVaeEncodeUnderBf16AutocastKeepsGroupNormInFloat32()
    {
        torch.manual_seed(6);
        using var vae = new FluxAutoEncoder(new FluxVaeConfig(3, 32, 3, [1, 2], 1, 16, 0.3611, 0.1159));
        using var scope = torch.NewDisposeScope();
        Tensor images = torch.rand(2, 3, 32, 32).mul(2).sub(1);
        Tensor truth = vae.EncodeMoments(images);
        Tensor Moments()
        {
            using IDisposable autocast = FluxAutoEncoder.EncodeUnderBf16Autocast();
            return vae.EncodeMoments(images);
        }
        Tensor with = Moments();
        Assert.Equal(ScalarType.BFloat16, with.dtype); // conv_out runs in bf16, as under autocast
        Assert.All(vae.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype)); // the weights are untouched

        // GroupNorm under autocast is a float32 op: float32 output, exactly torch's float32 group norm of the bf16 input.
        GroupNorm norm = nn.GroupNorm(32, 64, 1e-6);
        using (torch.no_grad()) { norm.weight!.uniform_(0.5, 1.5); norm.bias!.uniform_(-0.5, 0.5); }
        Tensor x = torch.randn(2, 64, 8, 8).mul(5).to(ScalarType.BFloat16);
        Tensor normed, normedWithout;
        using (FluxAutoEncoder.EncodeUnderBf16Autocast())
        {
            normed = VaeLayers.Norm(norm, x);
            VaeLayersSeam.DisableGroupNormIsland(true);
            try
            {
                normedWithout = VaeLayers.Norm(norm, x);
                Tensor without = Moments();
                double differing = DifferingFraction(without, with);
                double errWith = with.to(ScalarType.Float32).sub(truth).abs().mean().item<float>();
                double errWithout = without.to(ScalarType.Float32).sub(truth).abs().mean().item<float>();
                output.WriteLine($"VAE moments under bf16 autocast, mean |error| against fp32: GroupNorm in float32 {errWith:E3}, in bf16 {errWithout:E3}; {differing:P1} of the moments differ");
                Assert.True(differing > 0.05, $"only {differing:P2} of the moments change without the GroupNorm island: the encoder does not use it");
                Assert.True(errWith > 0, "the autocast encode equals fp32 exactly: it did not run in bf16");
            }
            finally
            {
                VaeLayersSeam.DisableGroupNormIsland(false);
            }
        }
        Assert.Equal(ScalarType.Float32, normed.dtype);
        Assert.True(Same(normed, norm.forward(x.to(ScalarType.Float32))), "GroupNorm under autocast is not the float32 group norm");
        Assert.Equal(ScalarType.BFloat16, normedWithout.dtype);
    }
}
