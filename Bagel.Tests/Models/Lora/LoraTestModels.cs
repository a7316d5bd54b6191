using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.Lora;
using Bagel.Tests.Models.Bagel;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Lora;

/// <summary>The tiny BAGEL batch and helpers shared by the LoRA tests.</summary>
internal static class LoraTestModels
{
    /// <summary>A batch with T2I, VLM and edit samples: every expert, the connector, the ViT and both gen projections run.</summary>
    public static PackedBatch MixedBatch() => BagelTestModels.Pack(BagelTestModels.T2I(), BagelTestModels.Vlm(), BagelTestModels.Edit());

    /// <summary>MSE and CE of one forward with fixed latents and noise.</summary>
    public static (Tensor Mse, Tensor Ce) Losses(BagelModel model, PackedBatch batch)
    {
        IReadOnlyList<Tensor>? latents = BagelTestModels.RandomLatents(batch);
        using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(22));
        Tensor mse = output.Mse!.detach().clone(), ce = output.Ce!.detach().clone();
        foreach (Tensor latent in latents ?? []) latent.Dispose();
        return (mse, ce);
    }

    /// <summary>Gives every B a random value (as after training) so the adapters change the outputs.</summary>
    public static void RandomizeB(LoraAdapterSet adapters, long seed = 9, double std = 0.05)
    {
        using var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (LoraLinear layer in adapters.Layers)
        {
            using Tensor draw = randn(layer.WeightB.shape, generator: generator).mul(std);
            layer.WeightB.copy_(draw);
        }
    }

    /// <summary>Same shape, dtype and bytes.</summary>
    public static bool BitEqual(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using Tensor ca = a.detach().contiguous().cpu(), cb = b.detach().contiguous().cpu();
        return ca.bytes.SequenceEqual(cb.bytes);
    }

    /// <summary>The largest |a − b| relative to max |b| (0 when both are zero).</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = torch.NewDisposeScope();
        Tensor a = actual.to(ScalarType.Float64), e = expected.to(ScalarType.Float64);
        double scale = e.abs().max().item<double>();
        double diff = (a - e).abs().max().item<double>();
        return scale == 0 ? diff : diff / scale;
    }
}
