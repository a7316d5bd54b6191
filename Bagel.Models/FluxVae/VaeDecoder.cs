using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>
/// The reference's <c>Decoder</c>: <c>conv_in</c> (z → bottleneck width) → <c>mid</c> → levels from the lowest
/// resolution up (num_res_blocks + 1 ResNet blocks to width ch·ch_mult[i], an Upsample after every level but level 0)
/// → <c>norm_out</c> → swish → <c>conv_out</c>. The <c>up</c> list is stored in index order 0..n−1 (level 0 = full
/// resolution), as in the checkpoint, and run from the last index down.
/// </summary>
public sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d _convIn;
    private readonly VaeMidBlock _mid;
    private readonly ModuleList<VaeLevel> _up;
    private readonly GroupNorm _normOut;
    private readonly Conv2d _convOut;

    /// <summary>Creates the decoder.</summary>
    /// <param name="config">The VAE shape (validated by the caller).</param>
    public VaeDecoder(FluxVaeConfig config) : base(nameof(VaeDecoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        long blockIn = config.BottleneckChannels;
        _convIn = VaeLayers.Conv3x3(config.ZChannels, blockIn);
        _mid = new VaeMidBlock(blockIn);
        var levels = new VaeLevel[config.ChMult.Count];
        for (int level = config.ChMult.Count - 1; level >= 0; level--)
        {
            long blockOut = (long)config.Ch * config.ChMult[level];
            var blocks = new List<VaeResnetBlock>();
            for (int j = 0; j < config.NumResBlocks + 1; j++)
            {
                blocks.Add(new VaeResnetBlock(blockIn, blockOut));
                blockIn = blockOut;
            }
            levels[level] = new VaeLevel(blocks, "upsample", level == 0 ? null : new VaeUpsample(blockIn));
        }
        _up = nn.ModuleList(levels);
        _normOut = VaeLayers.Norm(blockIn);
        _convOut = VaeLayers.Conv3x3(blockIn, config.OutChannels);
        register_module("conv_in", _convIn);
        register_module("mid", _mid);
        register_module("up", _up);
        register_module("norm_out", _normOut);
        register_module("conv_out", _convOut);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>Decodes unscaled latents [B, z_channels, h, w] to images [B, out_channels, h·f, w·f].</summary>
    /// <param name="z">Latents in the decoder's own space (already divided by the scale and shifted back).</param>
    /// <returns>The images, nominally in [−1, 1].</returns>
    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        Tensor h = _mid.forward(_convIn.forward(z));
        for (int level = _up.Count - 1; level >= 0; level--) h = _up[level].forward(h);
        h = _convOut.forward(VaeLayers.Swish(_normOut.forward(h)));
        return h.MoveToOuterDisposeScope();
    }
}
