using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>
/// The und/gen split of a packed sequence (model.md §2.2): und = text-like and ViT tokens, gen = VAE latent tokens.
/// Each expert runs on its gathered rows; results are scattered back into a zero tensor of full length.
/// </summary>
/// <param name="Und">Ascending int64 positions of und tokens (<c>packed_und_token_indexes</c>).</param>
/// <param name="Gen">Ascending int64 positions of gen tokens (<c>packed_gen_token_indexes</c>); may be empty.</param>
public sealed record Qwen2TokenRouting(torch.Tensor Und, torch.Tensor Gen)
{
    /// <summary>The und rows of <paramref name="x"/> (<c>x[und]</c>).</summary>
    /// <param name="x">[L, ...].</param>
    /// <returns>[Nu, ...].</returns>
    public torch.Tensor SelectUnd(torch.Tensor x) => x.index_select(0, Und);

    /// <summary>The gen rows of <paramref name="x"/> (<c>x[gen]</c>).</summary>
    /// <param name="x">[L, ...].</param>
    /// <returns>[Ng, ...].</returns>
    public torch.Tensor SelectGen(torch.Tensor x) => x.index_select(0, Gen);

    /// <summary><c>out = zeros; out[und] = und; out[gen] = gen</c>.</summary>
    /// <param name="und">Und rows [Nu, ...].</param>
    /// <param name="gen">Gen rows [Ng, ...] with the same trailing shape and dtype.</param>
    /// <param name="rows">L, the packed length.</param>
    /// <returns>[L, ...]; rows in neither list stay 0.</returns>
    public torch.Tensor Merge(torch.Tensor und, torch.Tensor gen, long rows)
    {
        ArgumentNullException.ThrowIfNull(und);
        ArgumentNullException.ThrowIfNull(gen);
        using var scope = torch.NewDisposeScope();
        long[] shape = [rows, .. und.shape[1..]];
        // In place into one fresh buffer (as the reference's index assignment): one [L, ...] allocation, not three.
        var merged = torch.zeros(shape, und.dtype, und.device).index_copy_(0, Und, und).index_copy_(0, Gen, gen);
        return merged.MoveToOuterDisposeScope();
    }

    /// <summary>The reference's <c>x[und] = x[und].detach()</c> (freeze_und), out of place: no gradient flows back
    /// through the und rows.</summary>
    /// <param name="x">[L, ...].</param>
    /// <returns>The same values with the und rows cut from the graph.</returns>
    public torch.Tensor DetachUnd(torch.Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var scope = torch.NewDisposeScope();
        return x.index_copy(0, Und, x.index_select(0, Und).detach()).MoveToOuterDisposeScope();
    }
}
