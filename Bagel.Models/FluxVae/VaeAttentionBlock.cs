using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>
/// The reference's <c>AttnBlock</c>: GroupNorm, 1×1 <c>q</c>, <c>k</c>, <c>v</c>, single-head attention over all h·w
/// positions of each image (scale 1/sqrt(C), no mask), 1×1 <c>proj_out</c>, residual. State-dict names: <c>norm</c>,
/// <c>q</c>, <c>k</c>, <c>v</c>, <c>proj_out</c>.
/// </summary>
public sealed class VaeAttentionBlock : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm _norm;
    private readonly Conv2d _q;
    private readonly Conv2d _k;
    private readonly Conv2d _v;
    private readonly Conv2d _projOut;

    /// <summary>Creates the block.</summary>
    /// <param name="channels">Width C (in and out).</param>
    public VaeAttentionBlock(long channels) : base(nameof(VaeAttentionBlock))
    {
        _norm = VaeLayers.Norm(channels);
        _q = VaeLayers.Conv1x1(channels, channels);
        _k = VaeLayers.Conv1x1(channels, channels);
        _v = VaeLayers.Conv1x1(channels, channels);
        _projOut = VaeLayers.Conv1x1(channels, channels);
        register_module("norm", _norm);
        register_module("q", _q);
        register_module("k", _k);
        register_module("v", _v);
        register_module("proj_out", _projOut);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
        Tensor normed = VaeLayers.Norm(_norm, x);
        // b c h w -> b 1 (h w) c: one head whose tokens are the pixels, features the channels.
        Tensor q = ToTokens(VaeLayers.Conv(_q, normed));
        Tensor k = ToTokens(VaeLayers.Conv(_k, normed));
        Tensor v = ToTokens(VaeLayers.Conv(_v, normed));
        Tensor attended = nn.functional.scaled_dot_product_attention(q, k, v);
        Tensor image = attended.squeeze(1).transpose(1, 2).reshape(batch, channels, height, width);
        return x.add(VaeLayers.Conv(_projOut, image)).MoveToOuterDisposeScope();
    }

    private static Tensor ToTokens(Tensor t) => t.flatten(2).transpose(1, 2).unsqueeze(1).contiguous();
}
