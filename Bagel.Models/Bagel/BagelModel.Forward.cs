using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Qwen2;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

public sealed partial class BagelModel
{
    /// <summary>
    /// The training forward (reference <c>Bagel.forward</c>, model.md §1.2): text embeddings, ViT tokens (SigLIP →
    /// connector → + <c>vit_pos_embed</c>) and noised latent tokens (<c>vae2llm(x_t) + time_embedder(t) +
    /// latent_pos_embed</c>) are scattered into one [L, H] sequence; the language model runs with und = text ∪ ViT
    /// positions and gen = VAE positions; the MSE is <c>(llm2vae(h[mse]) − (ε − x0)[t &gt; 0])²</c> per element and the CE
    /// is per token from <c>lm_head(h[ce])</c>. Absent groups (no ViT image, no VAE image, no CE label) are skipped
    /// instead of failing as in the reference.
    /// </summary>
    /// <param name="batch">The packed batch, on the model's device.</param>
    /// <param name="latents">One clean latent [z, ≥h·p, ≥w·p] per VAE image in sequence order (from
    /// <c>FluxAutoEncoder.EncodePacked</c>, computed without grad), or null when the batch has no VAE image.</param>
    /// <param name="flowNoise">The source of ε (<see cref="RandomPurposes.FlowNoise"/>): one standard-normal tensor
    /// like the packed latent tokens, drawn only when the batch has VAE images.</param>
    /// <returns>The per-token losses; the caller owns them. With <see cref="Qwen2Model.GradientCheckpointing"/> on,
    /// dispose the output only after the backward pass (it keeps the tensors the recomputation needs).</returns>
    /// <exception cref="BagelInputException">The batch holds a branch the model lacks, or the latents do not match it.</exception>
    public BagelForwardOutput Forward(PackedBatch batch, IReadOnlyList<Tensor>? latents, IRandomSource flowNoise)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(flowNoise);
        CheckBranches(batch, latents);
        using var scope = NewDisposeScope();

        // Step 1: text embeddings into a zero sequence (the reference's new_zeros + index assignment).
        Tensor textEmbedding = language_model.Model.EmbedTokens.forward(batch.PackedTextIds);
        Tensor sequence = zeros(batch.SequenceLength, Config.LlmConfig.HiddenSize, textEmbedding.dtype, textEmbedding.device);
        sequence.index_copy_(0, batch.PackedTextIndexes, textEmbedding);

        // Step 3: understanding tokens.
        if (batch.Vit is { } vit)
        {
            Tensor features = vit_model!.forward(vit);
            Tensor tokens = connector!.forward(features).add(vit_pos_embed!.forward(vit.PackedVitPositionIds));
            sequence.index_copy_(0, vit.PackedVitTokenIndexes, tokens.to(sequence.dtype));
        }

        // Step 4: generation tokens.
        FlowMatchingInputs? flow = null;
        if (batch.Vae is { } vae)
        {
            Tensor x0 = LatentPatchifier.PatchifyPacked(latents!, vae.LatentShapes, Config.LatentPatchSize);
            flow = FlowMatching.Prepare(x0, vae.PackedTimesteps, flowNoise, Config.TimestepShift);
            Tensor weight = vae2llm!.weight!;
            Tensor tokens = vae2llm.call(flow.NoisyLatents.to(weight.dtype))
                .add(time_embedder!.forward(flow.Timesteps))
                .add(latent_pos_embed!.forward(vae.PackedLatentPositionIds));
            sequence.index_copy_(0, vae.PackedVaeTokenIndexes, tokens.to(sequence.dtype));
        }

        // Steps 5-6: the language model, with the und/gen routing of MoE/MoT layers.
        Qwen2Model backbone = language_model.Model;
        bool checkpointing = backbone.GradientCheckpointing && backbone.training && is_grad_enabled();
        Tensor hidden;
        var retained = new List<IDisposable>();
        using (DisposeScope backboneScope = NewDisposeScope())
        {
            // Built in this scope so that, with checkpointing, the merged und index stays alive for the recomputation.
            Tensor? und = null, gen = null;
            if (Config.UseMoe)
            {
                und = batch.Vit is { } v
                    ? cat([batch.PackedTextIndexes, v.PackedVitTokenIndexes], 0).sort().Values
                    : batch.PackedTextIndexes;
                gen = batch.Vae?.PackedVaeTokenIndexes;
            }
            hidden = backboneScope.MoveToOuter(language_model.forward(new Qwen2PackedInput(sequence, batch.Samples, batch.PackedPositionIds, und, gen)));
            // With activation checkpointing the backward pass re-runs the layers on the inputs the backbone left in
            // this scope (attention mask, RoPE tables, routing): the output owns them until it is disposed.
            if (checkpointing)
            {
                retained.AddRange(backboneScope.DisposablesView);
                backboneScope.Detach(retained);
            }
        }

        // Losses in float32 (autocast upcasts the logits for CE; the squared error is taken in float32). The seam lets a
        // test measure that island.
        ScalarType lossType = Common.PrecisionIslands.t_noLossUpcast ? hidden.dtype : ScalarType.Float32;

        // Step 7: velocity MSE at the noisy tokens; rows of the target with t > 0 are in the same ascending order.
        Tensor? mse = null;
        if (batch.Vae is { } noisy && flow is not null)
        {
            Tensor prediction = llm2vae!.call(hidden.index_select(0, noisy.MseLossIndexes)).to(lossType);
            Tensor targetRows = flow.HasTarget().nonzero().squeeze(1);
            if (targetRows.shape[0] != prediction.shape[0])
                throw new BagelInputException(
                    $"The batch has {prediction.shape[0]} mse_loss_indexes but {targetRows.shape[0]} latent tokens with t > 0; every noisy latent token (finite packed_timesteps) must be an MSE position and no other.");
            Tensor target = flow.Target.index_select(0, targetRows).to(lossType);
            mse = prediction.sub(target).square().to(ScalarType.Float32);
        }

        // Step 8: per-token cross-entropy; labels are already shifted by the data pipeline.
        Tensor? ce = null;
        if (batch.TextLoss is { } textLoss)
        {
            Tensor logits = language_model.ComputeLogits(hidden.index_select(0, textLoss.CeLossIndexes)).to(lossType);
            ce = nn.functional.cross_entropy(logits, textLoss.PackedLabelIds, reduction: nn.Reduction.None).to(ScalarType.Float32);
        }

        var output = new BagelForwardOutput(mse?.MoveToOuterDisposeScope(), ce?.MoveToOuterDisposeScope());
        output.Retain(retained);
        return output;
    }

    private void CheckBranches(PackedBatch batch, IReadOnlyList<Tensor>? latents)
    {
        if (batch.Vit is not null && !Config.VisualUnd)
            throw new BagelInputException("The batch holds ViT images but the model has no understanding branch (visual_und is false); drop VLM/ViT items from the data or enable visual_und.");
        if (batch.Vae is not { } vae)
        {
            if (latents is { Count: > 0 })
                throw new BagelInputException($"{latents.Count} latent(s) were passed but the batch holds no VAE image.");
            return;
        }
        if (!Config.VisualGen)
            throw new BagelInputException("The batch holds VAE images but the model has no generation branch (visual_gen is false); drop T2I/edit items from the data or enable visual_gen.");
        if (latents is null || latents.Count != vae.ImageCount)
            throw new BagelInputException(
                $"The batch holds {vae.ImageCount} VAE image(s) but {latents?.Count ?? 0} latent(s) were passed; encode them with FluxAutoEncoder.EncodePacked first.");
        int channels = Config.VaeConfig!.ZChannels;
        for (int i = 0; i < latents.Count; i++)
        {
            if (latents[i].dim() != 3 || latents[i].shape[0] != channels)
                throw new BagelInputException(
                    $"Latent {i} is [{string.Join(", ", latents[i].shape)}]; the model expects [{channels}, h·{Config.LatentPatchSize}, w·{Config.LatentPatchSize}] (z_channels {channels}).");
        }
    }
}
