using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>
/// Default RoPE (model.md §2.5): <c>inv_freq[i] = 1 / theta^(2i/hd)</c> computed once in fp32,
/// <c>freqs = pos ⊗ inv_freq</c> in fp32, <c>emb = concat(freqs, freqs)</c>, cos/sin in fp32 then cast to the
/// hidden-state dtype.
/// </summary>
/// <remarks>
/// <c>inv_freq</c> is not a registered buffer: TorchSharp 0.107's <c>Module.to</c> skips non-persistent buffers, and
/// a persistent one would add a key the reference's state dict lacks. Instead the fp32 values are kept as numbers and
/// materialized on the device of the position ids; <see cref="InvFreqDType"/> follows <c>Module.to(dtype)</c>, so
/// casting the model to bf16 rounds the frequencies to bf16 exactly as the reference's FSDP buffer cast does.
/// </remarks>
public sealed class Qwen2RotaryEmbedding : torch.nn.Module<torch.Tensor, torch.ScalarType, (torch.Tensor Cos, torch.Tensor Sin)>
{
    private readonly float[] _invFreq;

    /// <summary>Creates the embedding for head dimension <paramref name="headDim"/>.</summary>
    /// <param name="headDim">hd (even).</param>
    /// <param name="ropeTheta">The base (<c>rope_theta</c>).</param>
    public Qwen2RotaryEmbedding(int headDim, double ropeTheta) : base(nameof(Qwen2RotaryEmbedding))
    {
        using var scope = torch.NewDisposeScope();
        var exponents = torch.arange(0, headDim, 2, dtype: torch.int64).to(torch.float32) / headDim;
        _invFreq = (1.0 / torch.pow(ropeTheta, exponents)).data<float>().ToArray();
        RegisterComponents();
    }

    /// <summary>The dtype <c>inv_freq</c> is rounded to before use (the reference's buffer dtype). Default float32;
    /// set by <c>Module.to(dtype)</c> on a floating dtype (bf16 reproduces the reference's FSDP training run).</summary>
    public torch.ScalarType InvFreqDType { get; set; } = torch.float32;

    /// <summary>The inverse frequencies [hd/2] in <see cref="InvFreqDType"/>, on <paramref name="device"/> (default CPU).</summary>
    /// <param name="device">Where to create them.</param>
    /// <returns>A new tensor.</returns>
    public torch.Tensor InvFreq(torch.Device? device = null) => torch.tensor(_invFreq, device: device).to(InvFreqDType);

    /// <summary>cos and sin for every position.</summary>
    /// <param name="position_ids">[L] int64 RoPE positions.</param>
    /// <param name="dtype">The hidden-state dtype the results are cast to.</param>
    /// <returns>cos, sin, each [L, hd].</returns>
    public override (torch.Tensor Cos, torch.Tensor Sin) forward(torch.Tensor position_ids, torch.ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var inv_freq = InvFreq(position_ids.device).to(torch.float32);
        var freqs = position_ids.to(torch.float32).unsqueeze(1) * inv_freq.unsqueeze(0);
        var emb = torch.cat([freqs, freqs], -1);
        var cos = emb.cos().to(dtype).MoveToOuterDisposeScope();
        var sin = emb.sin().to(dtype).MoveToOuterDisposeScope();
        return (cos, sin);
    }

    /// <inheritdoc />
    protected override torch.nn.Module _to(torch.ScalarType dtype, bool non_blocking)
    {
        if (IsRealFloatingPoint(dtype)) InvFreqDType = dtype;
        return base._to(dtype, non_blocking);
    }

    /// <inheritdoc />
    protected override torch.nn.Module _to(torch.Device device, torch.ScalarType dtype, bool non_blocking)
    {
        if (IsRealFloatingPoint(dtype)) InvFreqDType = dtype;
        return base._to(device, dtype, non_blocking);
    }

    private static bool IsRealFloatingPoint(torch.ScalarType dtype) =>
        dtype is torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Float32 or torch.ScalarType.Float64;

    /// <summary><c>concat(−x[hd/2:], x[:hd/2])</c> over the last dimension.</summary>
    /// <param name="x">[..., hd].</param>
    /// <returns>The half-rotated tensor.</returns>
    public static torch.Tensor RotateHalf(torch.Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        long half = x.shape[^1] / 2;
        using var scope = torch.NewDisposeScope();
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        return torch.cat([-x2, x1], -1).MoveToOuterDisposeScope();
    }

    /// <summary><c>x' = x·cos + rotate_half(x)·sin</c> for q [L, heads, hd] and k [L, kv_heads, hd] (cos/sin [L, hd]).</summary>
    /// <param name="q">Queries.</param>
    /// <param name="k">Keys.</param>
    /// <param name="cos">cos [L, hd].</param>
    /// <param name="sin">sin [L, hd].</param>
    /// <returns>The rotated queries and keys.</returns>
    public static (torch.Tensor Q, torch.Tensor K) ApplyRotaryPosEmb(torch.Tensor q, torch.Tensor k, torch.Tensor cos, torch.Tensor sin)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(cos);
        ArgumentNullException.ThrowIfNull(sin);
        using var scope = torch.NewDisposeScope();
        var c = cos.unsqueeze(1);
        var s = sin.unsqueeze(1);
        var q_embed = (q * c) + (RotateHalf(q) * s);
        var k_embed = (k * c) + (RotateHalf(k) * s);
        return (q_embed.MoveToOuterDisposeScope(), k_embed.MoveToOuterDisposeScope());
    }
}
