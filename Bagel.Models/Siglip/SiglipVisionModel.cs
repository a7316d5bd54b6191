using Bagel.Core.Batching;
using TorchSharp;

namespace Bagel.Models.Siglip;

/// <summary>
/// BAGEL's SigLIP NaViT vision tower (the reference's <c>SiglipVisionModel</c> from <c>siglip_navit.py</c>, in BAGEL
/// checkpoints under <c>vit_model.</c>): packed patches of several images [N, channels·patch²] → post-LayerNormed
/// features [N, hidden], attention bidirectional within each image. The patch embedding is already in its Linear
/// form; load Hugging Face SigLIP files with <see cref="SiglipCheckpointLoader.LoadHuggingFace"/>.
/// </summary>
/// <remarks>Runs in its parameters' dtype (tokens are cast to it); LayerNorms compute and return fp32, as under the
/// reference's bf16 autocast, so the output is fp32.</remarks>
public sealed class SiglipVisionModel : torch.nn.Module<VitImageFields, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly SiglipVisionTransformer vision_model;
#pragma warning restore IDE1006

    /// <summary>Creates the tower with the reference's initial weights (<see cref="SiglipInitialization"/>).</summary>
    /// <param name="config">The tower config, after <see cref="SiglipVisionConfig.WithBagelOverrides"/>.</param>
    /// <exception cref="SiglipConfigException">The config is invalid or asks for the 2D RoPE variant (<c>rope</c> true).</exception>
    public SiglipVisionModel(SiglipVisionConfig config) : base(nameof(SiglipVisionModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (config.Rope)
            throw new SiglipConfigException("SigLIP config sets rope = true (the reference's config default); BAGEL's trainer forces it false and only the learned position table is supported. Call WithBagelOverrides().");
        Config = config;
        vision_model = new SiglipVisionTransformer(config);
        RegisterComponents();
        SiglipInitialization.Apply(this);
    }

    /// <summary>The config this tower was built from.</summary>
    public SiglipVisionConfig Config { get; }

    /// <summary>The transformer (<c>vision_model</c>).</summary>
    public SiglipVisionTransformer VisionModel => vision_model;

    /// <summary>Encodes the ViT images of a packed batch.</summary>
    /// <param name="input">The batch's ViT fields (<c>packed_vit_tokens</c>, <c>packed_vit_position_ids</c>, <c>vit_token_seqlens</c>).</param>
    /// <returns>[N, hidden] features in pack order.</returns>
    /// <exception cref="SiglipInputException">The fields do not fit the tower.</exception>
    public override torch.Tensor forward(VitImageFields input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Forward(input.PackedVitTokens, input.PackedVitPositionIds, input.VitTokenSeqlens);
    }

    /// <summary>Encodes packed patches.</summary>
    /// <param name="packedVitTokens">[N, channels·patch²] float patch vectors (pixel row, pixel column, channel).</param>
    /// <param name="packedVitPositionIds">[N] int64 position-table rows (<c>r·(image_size/patch_size) + c</c>).</param>
    /// <param name="vitTokenSeqlens">[images] integer patches per image, summing to N (read to the CPU once).</param>
    /// <returns>[N, hidden] features in pack order.</returns>
    /// <exception cref="SiglipInputException">Shapes, dtypes, lengths or position ids do not fit the tower.</exception>
    public torch.Tensor Forward(torch.Tensor packedVitTokens, torch.Tensor packedVitPositionIds, torch.Tensor vitTokenSeqlens)
    {
        ArgumentNullException.ThrowIfNull(packedVitTokens);
        ArgumentNullException.ThrowIfNull(packedVitPositionIds);
        ArgumentNullException.ThrowIfNull(vitTokenSeqlens);
        long[] seqlens = ReadSeqlens(vitTokenSeqlens);
        CheckInputs(packedVitTokens, packedVitPositionIds, seqlens);
        return vision_model.forward(packedVitTokens, packedVitPositionIds, seqlens);
    }

    private static long[] ReadSeqlens(torch.Tensor vitTokenSeqlens)
    {
        if (vitTokenSeqlens.dim() != 1 || vitTokenSeqlens.shape[0] == 0 || !torch.is_integral(vitTokenSeqlens.dtype))
            throw new SiglipInputException($"vit_token_seqlens must be a non-empty 1-D integer tensor; got {vitTokenSeqlens.dtype} [{string.Join(", ", vitTokenSeqlens.shape)}].");
        using var cpu = vitTokenSeqlens.to(torch.int64).cpu();
        return cpu.data<long>().ToArray();
    }

    private void CheckInputs(torch.Tensor tokens, torch.Tensor positionIds, long[] seqlens)
    {
        long total = seqlens.Sum();
        if (tokens.dim() != 2 || tokens.shape[1] != Config.PatchVectorSize || !torch.is_floating_point(tokens))
            throw new SiglipInputException($"packed_vit_tokens must be float [N, {Config.PatchVectorSize}]; got {tokens.dtype} [{string.Join(", ", tokens.shape)}].");
        if (seqlens.Any(n => n <= 0) || total != tokens.shape[0])
            throw new SiglipInputException($"vit_token_seqlens [{string.Join(", ", seqlens)}] must be positive and sum to the {tokens.shape[0]} rows of packed_vit_tokens.");
        if (positionIds.dim() != 1 || positionIds.shape[0] != total || positionIds.dtype != torch.int64)
            throw new SiglipInputException($"packed_vit_position_ids must be int64 [{total}]; got {positionIds.dtype} [{string.Join(", ", positionIds.shape)}].");
        long min = positionIds.min().item<long>(), max = positionIds.max().item<long>();
        if (min < 0 || max >= Config.NumPositions)
            throw new SiglipInputException($"packed_vit_position_ids span [{min}, {max}] but the position table has {Config.NumPositions} rows ({Config.NumPatchesPerSide} per side); check the packer's max_num_patch_per_side against image_size / patch_size.");
    }
}
