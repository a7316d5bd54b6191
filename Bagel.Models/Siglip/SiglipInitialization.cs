using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Siglip;

/// <summary>
/// The initial weights the reference's tower gets from <c>SiglipPreTrainedModel._init_weights</c> when it is built
/// from a config (<c>post_init</c>; the trainer does this with <c>finetune_from_hf</c> before loading the checkpoint).
/// </summary>
/// <remarks>
/// <c>_init_weights</c> tests modules against the classes of <c>modeling_siglip.py</c>. The NaViT tower's attention
/// subclasses that file's <c>SiglipAttention</c>, so it gets the attention rule; its <c>SiglipMLP</c> and
/// <c>SiglipVisionEmbeddings</c> are separate classes of <c>siglip_navit.py</c>, so they fall through to the
/// generic Linear / Conv2d / Embedding rules. Result (checked against the reference, see
/// Bagel.Tests/Fixtures/Siglip/README.md): q/k/v/out weights Xavier-uniform, biases 0; MLP fc1/fc2 weights
/// LeCun-normal, biases 0 (not SigLIP's own MLP rule); the patch Conv2d LeCun-normal (fan-in channels·patch², then
/// converted, which only permutes i.i.d. values), bias 0; the position table N(0, 1/hidden) (Flax embed init,
/// fan-in = hidden); LayerNorms weight 1, bias 0.
/// </remarks>
public static class SiglipInitialization
{
    /// <summary>Transformers' <c>trunc_normal_tf_</c> correction: the std of N(0, 1) truncated to [−2, 2].</summary>
    public const double TruncatedNormalStd = 0.87962566103423978;

    /// <summary>erf(2 / sqrt 2) = 2·Φ(2) − 1: the uniform range whose inverse-erf image is N(0, 1) truncated to [−2, 2].</summary>
    private const double ErfOfTwoSigma = 0.95449973610364158;

    /// <summary>Initializes every parameter of <paramref name="model"/> by the rules above.</summary>
    /// <param name="model">The tower.</param>
    /// <param name="generator">The random source; null uses torch's global generator.</param>
    public static void Apply(SiglipVisionModel model, torch.Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var noGrad = torch.no_grad();
        foreach ((string _, torch.nn.Module module) in model.named_modules())
        {
            switch (module)
            {
                case SiglipAttention attention:
                    foreach (Linear projection in attention.children().OfType<Linear>()) XavierUniform(projection, generator);
                    break;
                case SiglipMLP mlp:
                    foreach (Linear fc in mlp.children().OfType<Linear>()) LecunNormal(fc, generator);
                    break;
                case SiglipVisionEmbeddings embeddings:
                    LecunNormal(embeddings.PatchEmbedding, generator);
                    embeddings.PositionEmbedding.weight!.normal_(0.0, Math.Sqrt(1.0 / embeddings.PositionEmbedding.weight.shape[1]), generator);
                    break;
                case SiglipLayerNorm norm:
                    foreach ((string name, Parameter parameter) in norm.named_parameters())
                        parameter.fill_(name == "weight" ? 1.0 : 0.0);
                    break;
            }
        }
    }

    /// <summary>Xavier-uniform weight (bound sqrt(6 / (fan_in + fan_out))), zero bias.</summary>
    private static void XavierUniform(Linear linear, torch.Generator? generator)
    {
        double bound = Math.Sqrt(6.0 / (linear.in_features + linear.out_features));
        linear.weight!.uniform_(-bound, bound, generator);
        linear.bias?.zero_();
    }

    /// <summary>LeCun-normal weight (transformers' <c>lecun_normal_</c>: N(0, 1/fan_in) truncated at ±2 raw std,
    /// rescaled by <see cref="TruncatedNormalStd"/>), zero bias.</summary>
    private static void LecunNormal(Linear linear, torch.Generator? generator)
    {
        double std = Math.Sqrt(1.0 / linear.in_features) / TruncatedNormalStd;
        // Inverse-CDF sampling as transformers' _trunc_normal_ does; TorchSharp 0.107's trunc_normal_ ignores the
        // generator, and with these bounds it returned values near zero here.
        linear.weight!.uniform_(-ErfOfTwoSigma, ErfOfTwoSigma, generator).erfinv_().mul_(std * Math.Sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std);
        linear.bias?.zero_();
    }
}
