using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>
/// Default RoPE (model.md §2.5): <c>inv_freq[i] = 1 / theta^(2i/hd)</c> (a non-persistent buffer, so casting the
/// module to bf16 rounds it exactly as the reference's FSDP buffer cast does), <c>freqs = pos ⊗ inv_freq</c> in fp32,
/// <c>emb = concat(freqs, freqs)</c>, cos/sin in fp32 then cast to the hidden-state dtype.
/// </summary>
public sealed class Qwen2RotaryEmbedding : torch.nn.Module<torch.Tensor, torch.ScalarType, (torch.Tensor Cos, torch.Tensor Sin)>
{
    private const string InvFreqName = "inv_freq";

    /// <summary>Creates the embedding for head dimension <paramref name="headDim"/>.</summary>
    /// <param name="headDim">hd (even).</param>
    /// <param name="ropeTheta">The base (<c>rope_theta</c>).</param>
    public Qwen2RotaryEmbedding(int headDim, double ropeTheta) : base(nameof(Qwen2RotaryEmbedding))
    {
        using var scope = torch.NewDisposeScope();
        var exponents = torch.arange(0, headDim, 2, dtype: torch.int64).to(torch.float32) / headDim;
        var inv_freq = (1.0 / torch.pow(ropeTheta, exponents)).MoveToOuterDisposeScope();
        register_buffer(InvFreqName, inv_freq, persistent: false);
        RegisterComponents();
    }

    /// <summary>The inverse frequencies [hd/2] (in the module's buffer dtype).</summary>
    public torch.Tensor InvFreq => get_buffer(InvFreqName)!;

    /// <summary>cos and sin for every position.</summary>
    /// <param name="position_ids">[L] int64 RoPE positions.</param>
    /// <param name="dtype">The hidden-state dtype the results are cast to.</param>
    /// <returns>cos, sin, each [L, hd].</returns>
    public override (torch.Tensor Cos, torch.Tensor Sin) forward(torch.Tensor position_ids, torch.ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var freqs = position_ids.to(torch.float32).unsqueeze(1) * InvFreq.to(torch.float32).unsqueeze(0);
        var emb = torch.cat([freqs, freqs], -1);
        var cos = emb.cos().to(dtype).MoveToOuterDisposeScope();
        var sin = emb.sin().to(dtype).MoveToOuterDisposeScope();
        return (cos, sin);
    }

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
