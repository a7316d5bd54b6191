using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The reference's <c>TimestepEmbedder</c> (modeling_utils.py, from DiT): a sinusoidal frequency embedding of the
/// post-sigmoid, post-shift t ∈ [0, 1] — <b>not</b> scaled by 1000 — followed by <c>mlp</c> = Linear(256 → H) →
/// SiLU → Linear(H → H). State-dict names: <c>mlp.0.{weight,bias}</c>, <c>mlp.2.{weight,bias}</c>. Linear layers
/// start with the PyTorch default init.
/// </summary>
public sealed class TimestepEmbedder : nn.Module<Tensor, Tensor>
{
    /// <summary>Reference <c>frequency_embedding_size</c>: 256 sinusoid features.</summary>
    public const int FrequencyEmbeddingSize = 256;

    /// <summary>Reference <c>max_period</c>: the slowest sinusoid's period, 10000.</summary>
    public const double MaxPeriod = 10000.0;

    private readonly Sequential _mlp;

    /// <summary>Creates the embedder.</summary>
    /// <param name="hiddenSize">H, the LLM hidden size.</param>
    public TimestepEmbedder(long hiddenSize) : base(nameof(TimestepEmbedder))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        _mlp = nn.Sequential(
            ("0", nn.Linear(FrequencyEmbeddingSize, hiddenSize, hasBias: true)),
            ("1", nn.SiLU()),
            ("2", nn.Linear(hiddenSize, hiddenSize, hasBias: true)));
        register_module("mlp", _mlp);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>Embeds timesteps.</summary>
    /// <param name="t">[N] timesteps (one per latent token), float.</param>
    /// <returns>[N, H] embeddings, in the MLP's dtype.</returns>
    public override Tensor forward(Tensor t)
    {
        using var scope = NewDisposeScope();
        Tensor weight = _mlp.parameters().First();
        // The float32 island (model.md §10): the frequencies and their cos/sin in float32, then the MLP's dtype.
        Tensor frequencies = Common.PrecisionIslands.t_noTimestepEmbedding
            ? FrequencyEmbedding(t.to(weight.dtype), weight.dtype)
            : FrequencyEmbedding(t);
        return _mlp.forward(frequencies.to(weight.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>The reference's <c>timestep_embedding</c>: with half = dim/2 and f_k = exp(−ln(max_period)·k/half)
    /// (float32), returns concat(cos(t·f), sin(t·f)) — cosines first — plus one zero column when dim is odd.</summary>
    /// <param name="t">[N] timesteps.</param>
    /// <param name="dim">Output features (default 256).</param>
    /// <param name="maxPeriod">The slowest period (default 10000).</param>
    /// <returns>[N, dim] float32.</returns>
    public static Tensor FrequencyEmbedding(Tensor t, int dim = FrequencyEmbeddingSize, double maxPeriod = MaxPeriod) =>
        FrequencyEmbedding(t, ScalarType.Float32, dim, maxPeriod);

    private static Tensor FrequencyEmbedding(Tensor t, ScalarType dtype, int dim = FrequencyEmbeddingSize, double maxPeriod = MaxPeriod)
    {
        ArgumentNullException.ThrowIfNull(t);
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 2);
        if (t.dim() != 1)
            throw new ArgumentException($"Timesteps must be a 1-D tensor; got [{string.Join(", ", t.shape)}].", nameof(t));
        int half = dim / 2;
        using var scope = NewDisposeScope();
        // Same op order as the reference: (−ln(P) · k) / half in float32, then exp.
        Tensor frequencies = arange(0, half, dtype: dtype, device: t.device)
            .mul(-Math.Log(maxPeriod)).div(half).exp();
        Tensor args = t.to(dtype).unsqueeze(1).mul(frequencies.unsqueeze(0));
        Tensor embedding = cat([args.cos(), args.sin()], 1);
        if (dim % 2 == 1) embedding = cat([embedding, zeros_like(embedding[.., ..1])], 1);
        return embedding.MoveToOuterDisposeScope();
    }
}
