using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>
/// One resolution level of the encoder (<c>down.{i}</c>) or decoder (<c>up.{i}</c>): ResNet blocks <c>block.{j}</c>,
/// then an optional <c>downsample</c> or <c>upsample</c>. The reference's empty <c>attn</c> lists hold no weights and
/// are left out.
/// </summary>
public sealed class VaeLevel : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<VaeResnetBlock> _blocks;
    private readonly nn.Module<Tensor, Tensor>? _resample;

    /// <summary>Creates the level.</summary>
    /// <param name="blocks">The ResNet blocks, in order (<c>block.{j}</c>).</param>
    /// <param name="resampleName"><c>"downsample"</c> or <c>"upsample"</c>; ignored when <paramref name="resample"/> is null.</param>
    /// <param name="resample">The resampling block after the ResNet blocks, or null on the last level.</param>
    public VaeLevel(IEnumerable<VaeResnetBlock> blocks, string resampleName, nn.Module<Tensor, Tensor>? resample)
        : base(nameof(VaeLevel))
    {
        _blocks = nn.ModuleList(blocks.ToArray());
        register_module("block", _blocks);
        _resample = resample;
        if (resample is not null) register_module(resampleName, resample);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor h = x;
        foreach (VaeResnetBlock block in _blocks) h = block.forward(h);
        if (_resample is not null) h = _resample.forward(h);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>The middle of the encoder and decoder (<c>mid</c>): <c>block_1</c>, <c>attn_1</c>, <c>block_2</c> at the
/// bottleneck width.</summary>
public sealed class VaeMidBlock : nn.Module<Tensor, Tensor>
{
    private readonly VaeResnetBlock _block1;
    private readonly VaeAttentionBlock _attn1;
    private readonly VaeResnetBlock _block2;

    /// <summary>Creates the middle blocks.</summary>
    /// <param name="channels">The bottleneck width.</param>
    public VaeMidBlock(long channels) : base(nameof(VaeMidBlock))
    {
        _block1 = new VaeResnetBlock(channels, channels);
        _attn1 = new VaeAttentionBlock(channels);
        _block2 = new VaeResnetBlock(channels, channels);
        register_module("block_1", _block1);
        register_module("attn_1", _attn1);
        register_module("block_2", _block2);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _block2.forward(_attn1.forward(_block1.forward(x))).MoveToOuterDisposeScope();
    }
}
