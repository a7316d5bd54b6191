using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>
/// The reference's <c>Encoder</c>: <c>conv_in</c> → levels <c>down.{i}</c> (ResNet blocks to width ch·ch_mult[i],
/// a Downsample after every level but the last) → <c>mid</c> → <c>norm_out</c> → swish → <c>conv_out</c> to
/// 2·z_channels moments (mean first, then log-variance).
/// </summary>
public sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d _convIn;
    private readonly ModuleList<VaeLevel> _down;
    private readonly VaeMidBlock _mid;
    private readonly GroupNorm _normOut;
    private readonly Conv2d _convOut;

    /// <summary>Creates the encoder.</summary>
    /// <param name="config">The VAE shape (validated by the caller).</param>
    public VaeEncoder(FluxVaeConfig config) : base(nameof(VaeEncoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        _convIn = VaeLayers.Conv3x3(config.InChannels, config.Ch);
        var levels = new List<VaeLevel>();
        long blockIn = config.Ch;
        for (int level = 0; level < config.ChMult.Count; level++)
        {
            long blockOut = (long)config.Ch * config.ChMult[level];
            var blocks = new List<VaeResnetBlock>();
            for (int j = 0; j < config.NumResBlocks; j++)
            {
                blocks.Add(new VaeResnetBlock(blockIn, blockOut));
                blockIn = blockOut;
            }
            bool last = level == config.ChMult.Count - 1;
            levels.Add(new VaeLevel(blocks, "downsample", last ? null : new VaeDownsample(blockIn)));
        }
        _down = nn.ModuleList(levels.ToArray());
        _mid = new VaeMidBlock(blockIn);
        _normOut = VaeLayers.Norm(blockIn);
        _convOut = VaeLayers.Conv3x3(blockIn, 2L * config.ZChannels);
        register_module("conv_in", _convIn);
        register_module("down", _down);
        register_module("mid", _mid);
        register_module("norm_out", _normOut);
        register_module("conv_out", _convOut);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>Encodes images [B, in_channels, H, W] to moments [B, 2·z_channels, H/f, W/f].</summary>
    /// <param name="x">The images, normalized to [−1, 1].</param>
    /// <returns>The posterior moments: mean channels first, then log-variance channels.</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor h = VaeLayers.Conv(_convIn, x);
        foreach (VaeLevel level in _down) h = level.forward(h);
        h = _mid.forward(h);
        h = VaeLayers.Conv(_convOut, VaeLayers.Swish(VaeLayers.Norm(_normOut, h)));
        return h.MoveToOuterDisposeScope();
    }
}
