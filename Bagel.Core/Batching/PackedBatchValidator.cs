using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Batching;

/// <summary>The checks behind <see cref="PackedBatch.Validate"/>; each failure names the reference field.</summary>
internal static class PackedBatchValidator
{
    private const string SequenceLength = "sequence_length";

    public static void Validate(PackedBatch batch, PackedBatchLimits limits)
    {
        int n = CheckSamples(batch);
        CheckDevices(batch);
        AttentionMode[] modeAt = ModesByPosition(batch, n);

        long[] positions = Longs(batch.PackedPositionIds, "packed_position_ids", n);
        CheckPositionIds(batch, positions);

        var owner = new string?[n];
        long[] textIds = Longs(batch.PackedTextIds, "packed_text_ids");
        long[] textIndexes = Longs(batch.PackedTextIndexes, "packed_text_indexes", textIds.Length, "packed_text_ids");
        CheckIds(textIds, "packed_text_ids", limits.VocabularySize);
        Claim(owner, textIndexes, "packed_text_indexes");

        if (batch.Vae is { } vae) CheckVae(vae, owner, modeAt, limits);
        if (batch.Vit is { } vit) CheckVit(vit, owner, limits);
        if (batch.TextLoss is { } textLoss) CheckTextLoss(textLoss, n, limits);

        int uncovered = Array.IndexOf(owner, null);
        if (uncovered >= 0)
            throw new PackedBatchValidationException(SequenceLength,
                $"position {uncovered} of {n} is claimed by none of packed_text_indexes, packed_vit_token_indexes, packed_vae_token_indexes; " +
                "every position must belong to exactly one of them.");
    }

    private static int CheckSamples(PackedBatch batch)
    {
        if (batch.Samples.Count == 0)
            throw new PackedBatchValidationException("sample_lens", "the batch holds no sample.");
        for (int s = 0; s < batch.Samples.Count; s++)
        {
            SampleLayout sample = batch.Samples[s];
            if (sample.Length < 1)
                throw new PackedBatchValidationException("sample_lens", $"sample {s} has length {sample.Length}; every sample holds at least one token.");
            if (sample.Splits.Count == 0)
                throw new PackedBatchValidationException("split_lens", $"sample {s} has no split.");
            int bad = sample.Splits.ToList().FindIndex(split => split.Length < 1);
            if (bad >= 0)
                throw new PackedBatchValidationException("split_lens", $"split {bad} of sample {s} has length {sample.Splits[bad].Length}; splits are non-empty.");
            long sum = sample.Splits.Sum(split => (long)split.Length);
            if (sum != sample.Length)
                throw new PackedBatchValidationException("split_lens", $"the splits of sample {s} sum to {sum}, but its sample_lens entry is {sample.Length}.");
        }
        if (batch.DataIndexes.Count != batch.Samples.Count)
            throw new PackedBatchValidationException("batch_data_indexes", $"{batch.DataIndexes.Count} data indexes for {batch.Samples.Count} samples; there is one per sample.");
        return checked((int)batch.Samples.Sum(s => (long)s.Length));
    }

    private static void CheckDevices(PackedBatch batch)
    {
        Device device = batch.PackedPositionIds.device;
        foreach ((string name, Tensor tensor) in batch.NamedTensors())
            if (tensor.device.type != device.type || tensor.device.index != device.index)
                throw new PackedBatchValidationException(name, $"is on {tensor.device}, but packed_position_ids is on {device}; a batch lives on one device.");
    }

    private static AttentionMode[] ModesByPosition(PackedBatch batch, int n)
    {
        var modes = new AttentionMode[n];
        int at = 0;
        foreach (AttentionSplit split in batch.Samples.SelectMany(s => s.Splits))
        {
            Array.Fill(modes, split.Mode, at, split.Length);
            at += split.Length;
        }
        return modes;
    }

    private static void CheckPositionIds(PackedBatch batch, long[] positions)
    {
        int at = 0;
        for (int s = 0; s < batch.Samples.Count; s++)
        {
            int end = at + batch.Samples[s].Length;
            for (int i = at; i < end; i++)
            {
                if (positions[i] < 0)
                    throw new PackedBatchValidationException("packed_position_ids", $"position {i} has RoPE id {positions[i]}; ids are non-negative.");
                if (i > at && positions[i] < positions[i - 1])
                    throw new PackedBatchValidationException("packed_position_ids",
                        $"RoPE ids decrease inside sample {s} at position {i} ({positions[i - 1]} then {positions[i]}); they restart only at a sample start.");
            }
            at = end;
        }
    }

    private static void CheckVae(VaeImageFields vae, string?[] owner, AttentionMode[] modeAt, PackedBatchLimits limits)
    {
        Tensor images = vae.PaddedImages;
        RequireDType(images, ScalarType.Float32, "padded_images");
        if (images.ndim != 4 || images.shape[1] != 3)
            throw new PackedBatchValidationException("padded_images", $"has shape [{string.Join(", ", images.shape)}]; expected [Nvae, 3, Hmax, Wmax].");
        if (vae.ImageCount == 0)
            throw new PackedBatchValidationException("patchified_vae_latent_shapes", "the VAE group holds no image; a batch without VAE images has Vae = null.");
        if (vae.ImageCount != images.shape[0])
            throw new PackedBatchValidationException("patchified_vae_latent_shapes", $"{vae.ImageCount} latent shapes for {images.shape[0]} padded images.");
        int pixelsPerToken = vae.PixelsPerLatentToken;
        for (int i = 0; i < vae.ImageCount; i++)
        {
            LatentGrid grid = vae.LatentShapes[i];
            if (grid.Height < 1 || grid.Width < 1 || (long)grid.Height * pixelsPerToken > images.shape[2] || (long)grid.Width * pixelsPerToken > images.shape[3])
                throw new PackedBatchValidationException("patchified_vae_latent_shapes",
                    $"image {i} has latent grid {grid.Height}x{grid.Width}, which does not fit the padded {images.shape[2]}x{images.shape[3]} pixels at {pixelsPerToken} pixels per token.");
            // Interpolated ids bucket any grid onto G×G, so only extrapolated ids need the grid to fit.
            if (limits.MaxLatentSize is int g && !limits.InterpolatedLatentPositions && (grid.Height > g || grid.Width > g))
                throw new PackedBatchValidationException("patchified_vae_latent_shapes",
                    $"image {i} has latent grid {grid.Height}x{grid.Width}, larger than max_latent_size {g}; raise max_latent_size or lower max_image_size.");
        }
        int v = vae.LatentShapes.Sum(grid => grid.TokenCount);
        long[] tokenIndexes = Longs(vae.PackedVaeTokenIndexes, "packed_vae_token_indexes", v, "Σ h·w of patchified_vae_latent_shapes");
        Claim(owner, tokenIndexes, "packed_vae_token_indexes");
        long[] latentIds = Longs(vae.PackedLatentPositionIds, "packed_latent_position_ids", v, "Σ h·w of patchified_vae_latent_shapes");
        CheckLatentPositionIds(vae.LatentShapes, latentIds, limits.MaxLatentSize, limits.InterpolatedLatentPositions);

        RequireDType(vae.PackedTimesteps, ScalarType.Float32, "packed_timesteps");
        float[] timesteps = Floats(vae.PackedTimesteps, "packed_timesteps", v);
        var noisy = new HashSet<long>();
        int start = 0;
        for (int i = 0; i < vae.ImageCount; i++)
        {
            int end = start + vae.LatentShapes[i].TokenCount;
            for (int k = start; k < end; k++)
            {
                float t = timesteps[k];
                if (float.IsNaN(t) || float.IsPositiveInfinity(t))
                    throw new PackedBatchValidationException("packed_timesteps", $"latent token {k} has timestep {t}; expected a finite draw or -inf (clean).");
                if (t.CompareTo(timesteps[start]) != 0)
                    throw new PackedBatchValidationException("packed_timesteps", $"image {i} has different timesteps on its tokens ({timesteps[start]} and {t}); one draw is shared by an image.");
                if (float.IsFinite(t)) noisy.Add(tokenIndexes[k]);
            }
            start = end;
        }

        long[] mse = Longs(vae.MseLossIndexes, "mse_loss_indexes");
        CheckAscendingInRange(mse, "mse_loss_indexes", owner.Length);
        foreach (long position in mse)
        {
            if (!noisy.Contains(position))
                throw new PackedBatchValidationException("mse_loss_indexes", $"position {position} is not a latent slot with a finite timestep (noisy image token).");
            // Noisy images form noise splits; the reference's video frames with loss form full splits, so only
            // causal (text) splits are impossible here.
            if (modeAt[position] == AttentionMode.Causal)
                throw new PackedBatchValidationException("mse_loss_indexes", $"position {position} lies in a causal split; noisy latent tokens lie in image (noise or full) splits.");
        }
        if (mse.Length != noisy.Count)
            throw new PackedBatchValidationException("mse_loss_indexes", $"holds {mse.Length} positions, but {noisy.Count} latent slots have a finite timestep; every noisy latent token carries the MSE loss.");
    }

    private static void CheckLatentPositionIds(IReadOnlyList<LatentGrid> grids, long[] ids, int? maxLatentSize, bool interpolated)
    {
        int k = 0;
        for (int i = 0; i < grids.Count; i++)
            for (int row = 0; row < grids[i].Height; row++)
                for (int col = 0; col < grids[i].Width; col++, k++)
                {
                    if (ids[k] < 0)
                        throw new PackedBatchValidationException("packed_latent_position_ids", $"latent token {k} has id {ids[k]}; ids are non-negative.");
                    if (maxLatentSize is not int g) continue;
                    if (interpolated)
                        CheckInterpolatedLatentId(ids, k, i, row, col, grids[i].Width, g);
                    else if (ids[k] != (long)row * g + col)
                        throw new PackedBatchValidationException("packed_latent_position_ids",
                            $"latent token {k} (image {i}, row {row}, col {col}) has id {ids[k]}; expected row·{g}+col = {(long)row * g + col}.");
                }
    }

    /// <summary>An interpolated id is <c>bucket_row·G + bucket_col</c> with both buckets in [0, G); the buckets never
    /// decrease along a row (column bucket) or down a column (row bucket) of the image.</summary>
    private static void CheckInterpolatedLatentId(long[] ids, int k, int image, int row, int col, int width, int g)
    {
        long id = ids[k];
        if (id >= (long)g * g)
            throw new PackedBatchValidationException("packed_latent_position_ids",
                $"latent token {k} (image {image}, row {row}, col {col}) has id {id}, outside [0, {(long)g * g}) = [0, max_latent_size²) of the interpolated grid.");
        if (col > 0 && (id / g != ids[k - 1] / g || id % g < ids[k - 1] % g))
            throw new PackedBatchValidationException("packed_latent_position_ids",
                $"latent token {k} (image {image}, row {row}, col {col}) has id {id} after {ids[k - 1]}; along a row the interpolated row bucket stays and the column bucket does not decrease.");
        if (row > 0 && (id / g < ids[k - width] / g || id % g != ids[k - width] % g))
            throw new PackedBatchValidationException("packed_latent_position_ids",
                $"latent token {k} (image {image}, row {row}, col {col}) has id {id} below {ids[k - width]}; down a column the interpolated column bucket stays and the row bucket does not decrease.");
    }

    private static void CheckVit(VitImageFields vit, string?[] owner, PackedBatchLimits limits)
    {
        Tensor tokens = vit.PackedVitTokens;
        RequireDType(tokens, ScalarType.Float32, "packed_vit_tokens");
        if (tokens.ndim != 2 || tokens.shape[1] != VitImageFields.PatchVectorSize)
            throw new PackedBatchValidationException("packed_vit_tokens", $"has shape [{string.Join(", ", tokens.shape)}]; expected [P, {VitImageFields.PatchVectorSize}].");
        long p = tokens.shape[0];
        long[] seqlens = Longs(vit.VitTokenSeqlens, "vit_token_seqlens");
        if (seqlens.Length == 0)
            throw new PackedBatchValidationException("vit_token_seqlens", "the ViT group holds no image; a batch without ViT images has Vit = null.");
        int bad = Array.FindIndex(seqlens, len => len < 1);
        if (bad >= 0)
            throw new PackedBatchValidationException("vit_token_seqlens", $"image {bad} has {seqlens[bad]} patches; each ViT image has at least one.");
        if (seqlens.Sum() != p)
            throw new PackedBatchValidationException("vit_token_seqlens", $"sums to {seqlens.Sum()}, but packed_vit_tokens holds {p} patches.");
        long[] indexes = Longs(vit.PackedVitTokenIndexes, "packed_vit_token_indexes", p, "packed_vit_tokens rows");
        Claim(owner, indexes, "packed_vit_token_indexes");
        long[] ids = Longs(vit.PackedVitPositionIds, "packed_vit_position_ids", p, "packed_vit_tokens rows");
        long limit = limits.VitMaxPatchesPerSide is int side ? (long)side * side : long.MaxValue;
        bad = Array.FindIndex(ids, id => id < 0 || id >= limit);
        if (bad >= 0)
            throw new PackedBatchValidationException("packed_vit_position_ids", $"patch {bad} has id {ids[bad]}, outside [0, {limit}).");
    }

    private static void CheckTextLoss(TextLossFields textLoss, int n, PackedBatchLimits limits)
    {
        long[] labels = Longs(textLoss.PackedLabelIds, "packed_label_ids");
        if (labels.Length == 0)
            throw new PackedBatchValidationException("packed_label_ids", "the CE group holds no label; a batch without CE tokens has TextLoss = null.");
        CheckIds(labels, "packed_label_ids", limits.VocabularySize);
        long[] indexes = Longs(textLoss.CeLossIndexes, "ce_loss_indexes", labels.Length, "packed_label_ids");
        CheckAscendingInRange(indexes, "ce_loss_indexes", n);
        RequireDType(textLoss.CeLossWeights, ScalarType.Float32, "ce_loss_weights");
        float[] weights = Floats(textLoss.CeLossWeights, "ce_loss_weights", labels.Length);
        int bad = Array.FindIndex(weights, w => !float.IsFinite(w) || w < 0);
        if (bad >= 0)
            throw new PackedBatchValidationException("ce_loss_weights", $"label {bad} has weight {weights[bad]}; weights are finite and non-negative.");
    }

    private static void CheckIds(long[] ids, string field, long? vocabularySize)
    {
        long limit = vocabularySize ?? long.MaxValue;
        int bad = Array.FindIndex(ids, id => id < 0 || id >= limit);
        if (bad >= 0)
            throw new PackedBatchValidationException(field, $"entry {bad} is {ids[bad]}, outside [0, {limit}).");
    }

    private static void Claim(string?[] owner, long[] indexes, string field)
    {
        CheckAscendingInRange(indexes, field, owner.Length);
        foreach (long position in indexes)
        {
            if (owner[position] is { } other)
                throw new PackedBatchValidationException(field, $"position {position} is also in {other}; text, ViT and VAE positions are disjoint.");
            owner[position] = field;
        }
    }

    private static void CheckAscendingInRange(long[] indexes, string field, int n)
    {
        for (int i = 0; i < indexes.Length; i++)
        {
            if (indexes[i] < 0 || indexes[i] >= n)
                throw new PackedBatchValidationException(field, $"entry {i} is {indexes[i]}, outside the sequence [0, {n}).");
            if (i > 0 && indexes[i] <= indexes[i - 1])
                throw new PackedBatchValidationException(field, $"is not strictly ascending at entry {i} ({indexes[i - 1]} then {indexes[i]}).");
        }
    }

    private static void RequireDType(Tensor tensor, ScalarType dtype, string field)
    {
        if (tensor.dtype != dtype)
            throw new PackedBatchValidationException(field, $"has dtype {tensor.dtype}; expected {dtype}.");
    }

    private static long[] Longs(Tensor tensor, string field, long? expectedLength = null, string? lengthSource = null)
    {
        RequireDType(tensor, ScalarType.Int64, field);
        RequireVector(tensor, field, expectedLength, lengthSource);
        return HostArray<long>(tensor);
    }

    private static float[] Floats(Tensor tensor, string field, long expectedLength)
    {
        RequireVector(tensor, field, expectedLength, "the latent or label count");
        return HostArray<float>(tensor);
    }

    private static void RequireVector(Tensor tensor, string field, long? expectedLength, string? lengthSource)
    {
        if (tensor.ndim != 1)
            throw new PackedBatchValidationException(field, $"has shape [{string.Join(", ", tensor.shape)}]; expected a 1-D tensor.");
        if (expectedLength is long length && tensor.shape[0] != length)
            throw new PackedBatchValidationException(field, $"has {tensor.shape[0]} entries; expected {length} ({lengthSource ?? SequenceLength}).");
    }

    private static T[] HostArray<T>(Tensor tensor) where T : unmanaged
    {
        using DisposeScope scope = torch.NewDisposeScope(); // frees the host copies, never the batch's own tensor
        return tensor.cpu().contiguous().data<T>().ToArray();
    }
}
