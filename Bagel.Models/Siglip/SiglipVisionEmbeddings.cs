using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Siglip;

/// <summary>
/// Patch and position embedding of packed patches (model.md §3 steps 2–3): <c>patch_embedding</c> is the Linear form
/// (channels·patch² → hidden) of SigLIP's stride-patch Conv2d (see <see cref="SiglipPatchEmbeddingConversion"/>),
/// and the learned <c>position_embedding</c> row <c>r·(image_size/patch_size) + c</c> is added ("extrapolate" ids;
/// interpolated ids index the same table).
/// </summary>
public sealed class SiglipVisionEmbeddings : torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Linear patch_embedding;
    private readonly Embedding position_embedding;
#pragma warning restore IDE1006

    /// <summary>Creates the embeddings (PyTorch's default init; <see cref="SiglipVisionModel"/> then applies <see cref="SiglipInitialization"/>).</summary>
    /// <param name="config">The tower config.</param>
    public SiglipVisionEmbeddings(SiglipVisionConfig config) : base(nameof(SiglipVisionEmbeddings))
    {
        ArgumentNullException.ThrowIfNull(config);
        patch_embedding = torch.nn.Linear(config.PatchVectorSize, config.HiddenSize);
        position_embedding = torch.nn.Embedding(config.NumPositions, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>The patch projection [hidden, channels·patch²] (+ bias).</summary>
    public Linear PatchEmbedding => patch_embedding;

    /// <summary>The learned position table [positions, hidden].</summary>
    public Embedding PositionEmbedding => position_embedding;

    /// <summary>Embeds packed patches.</summary>
    /// <param name="packed_pixel_values">[N, channels·patch²], any float dtype (cast to the weight's).</param>
    /// <param name="packed_flattened_position_ids">[N] int64 rows of the position table.</param>
    /// <returns>[N, hidden] in the weight dtype.</returns>
    public override torch.Tensor forward(torch.Tensor packed_pixel_values, torch.Tensor packed_flattened_position_ids)
    {
        using var scope = torch.NewDisposeScope();
        var patch_embeds = patch_embedding.call(packed_pixel_values.to(patch_embedding.weight!.dtype));
        return (patch_embeds + position_embedding.forward(packed_flattened_position_ids)).MoveToOuterDisposeScope();
    }
}
