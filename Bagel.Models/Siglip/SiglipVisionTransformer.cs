using TorchSharp;

namespace Bagel.Models.Siglip;

/// <summary>
/// The reference's <c>SiglipVisionTransformer</c> (<c>vision_model</c>): embeddings, the pre-LN encoder, then
/// <c>post_layernorm</c> on the last layer's output (model.md §3 steps 2–5). Inputs are validated by
/// <see cref="SiglipVisionModel"/>.
/// </summary>
public sealed class SiglipVisionTransformer : torch.nn.Module<torch.Tensor, torch.Tensor, IReadOnlyList<long>, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly SiglipVisionEmbeddings embeddings;
    private readonly SiglipEncoder encoder;
    private readonly SiglipLayerNorm post_layernorm;
#pragma warning restore IDE1006

    /// <summary>Creates the transformer.</summary>
    /// <param name="config">The tower config.</param>
    public SiglipVisionTransformer(SiglipVisionConfig config) : base(nameof(SiglipVisionTransformer))
    {
        ArgumentNullException.ThrowIfNull(config);
        embeddings = new SiglipVisionEmbeddings(config);
        encoder = new SiglipEncoder(config);
        post_layernorm = new SiglipLayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>The patch and position embeddings.</summary>
    public SiglipVisionEmbeddings Embeddings => embeddings;

    /// <summary>The encoder layers.</summary>
    public SiglipEncoder Encoder => encoder;

    /// <inheritdoc />
    public override torch.Tensor forward(torch.Tensor packed_pixel_values, torch.Tensor packed_flattened_position_ids, IReadOnlyList<long> seqlens)
    {
        using var scope = torch.NewDisposeScope();
        var hidden_states = embeddings.forward(packed_pixel_values, packed_flattened_position_ids);
        var last_hidden_state = encoder.forward(hidden_states, seqlens);
        return post_layernorm.forward(last_hidden_state).MoveToOuterDisposeScope();
    }
}
