using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The reference's <c>PositionEmbedding</c>: a fixed 2D sin-cos table <c>pos_embed</c> [G², H] (a parameter with
/// <c>requires_grad=False</c>, built in float64 by <see cref="SinCosPositionTable"/> and stored as float32), looked up
/// by position id <c>r·G + c</c>. Used as <c>latent_pos_embed</c> (G = <c>max_latent_size</c>) and
/// <c>vit_pos_embed</c> (G = 70). BAGEL checkpoint loading drops these tables and rebuilds them.
/// </summary>
public sealed class PositionEmbedding : nn.Module<Tensor, Tensor>
{
    private Parameter _posEmbed;

    /// <summary>Creates the table.</summary>
    /// <param name="maxNumPatchPerSide">G, positions per side.</param>
    /// <param name="hiddenSize">H; a multiple of 4.</param>
    public PositionEmbedding(int maxNumPatchPerSide, int hiddenSize) : base(nameof(PositionEmbedding))
    {
        MaxNumPatchPerSide = maxNumPatchPerSide;
        HiddenSize = hiddenSize;
        using Tensor table = SinCosPositionTable.Build(hiddenSize, maxNumPatchPerSide);
        _posEmbed = new Parameter(table.to(ScalarType.Float32), requires_grad: false);
        register_parameter("pos_embed", _posEmbed);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    protected override nn.Module _to(ScalarType dtype, bool non_blocking) => Refresh(base._to(dtype, non_blocking));

    /// <inheritdoc />
    protected override nn.Module _to(Device device, ScalarType dtype, bool non_blocking) => Refresh(base._to(device, dtype, non_blocking));

    /// <inheritdoc />
    protected override nn.Module _to(DeviceType deviceType, int deviceIndex, bool non_blocking) => Refresh(base._to(deviceType, deviceIndex, non_blocking));

    /// <summary>TorchSharp's <c>to</c> replaces the registered parameter (the field keeps the old, disposed one).</summary>
    private nn.Module Refresh(nn.Module result)
    {
        _posEmbed = (Parameter)named_parameters().First(p => p.name == "pos_embed").parameter;
        return result;
    }

    /// <summary>G, positions per side.</summary>
    public int MaxNumPatchPerSide { get; }

    /// <summary>H, features per position.</summary>
    public int HiddenSize { get; }

    /// <summary>The table [G², H] (<c>pos_embed</c>).</summary>
    public Tensor Table => _posEmbed;

    /// <summary>Rebuilds the table in place (after a load overwrote it, as the reference recomputes it).</summary>
    public void Reset()
    {
        using var noGrad = no_grad();
        using Tensor table = SinCosPositionTable.Build(HiddenSize, MaxNumPatchPerSide);
        _posEmbed.copy_(table);
    }

    /// <summary>Looks up rows.</summary>
    /// <param name="positionIds">[N] int64 ids r·G + c.</param>
    /// <returns>[N, H] rows of the table.</returns>
    public override Tensor forward(Tensor positionIds)
    {
        ArgumentNullException.ThrowIfNull(positionIds);
        return _posEmbed.index_select(0, positionIds.flatten());
    }
}
