using TorchSharp;

namespace Bagel.Models.Siglip;

/// <summary>
/// SigLIP's stride-patch Conv2d → BAGEL's Linear patch embedding (model.md §3 step 2, the reference's
/// <c>convert_conv2d_to_linear</c>): the conv weight [out, channels, ky, kx] is permuted to (out, ky, kx, channels)
/// and flattened, so a patch vector laid out (pixel row, pixel column, channel) — channel fastest — meets the matching
/// weight. The bias is unchanged.
/// </summary>
public static class SiglipPatchEmbeddingConversion
{
    /// <summary>Converts a conv weight to its Linear form.</summary>
    /// <param name="convWeight">[out, channels, patch, patch] (any dtype/device).</param>
    /// <returns>A new contiguous [out, patch·patch·channels] tensor of the same dtype and device.</returns>
    /// <exception cref="ArgumentException">The tensor is not a square-kernel 4-D conv weight.</exception>
    public static torch.Tensor ConvWeightToLinear(torch.Tensor convWeight)
    {
        ArgumentNullException.ThrowIfNull(convWeight);
        if (convWeight.dim() != 4 || convWeight.shape[2] != convWeight.shape[3])
            throw new ArgumentException(
                $"A patch-embedding conv weight is [out, channels, patch, patch]; got [{string.Join(", ", convWeight.shape)}].", nameof(convWeight));
        long outChannels = convWeight.shape[0], vectorSize = convWeight.shape[1] * convWeight.shape[2] * convWeight.shape[3];
        return convWeight.permute(0, 2, 3, 1).reshape(outChannels, vectorSize).contiguous();
    }

    /// <summary>Converts a loaded Hugging Face SigLIP state dict in place: a conv-shaped
    /// <paramref name="key"/> entry is replaced by its Linear form and the conv tensor is disposed (the reference
    /// deletes the conv). An entry already in Linear form is left alone.</summary>
    /// <param name="stateDict">Name → tensor, e.g. read from a SigLIP safetensors file.</param>
    /// <param name="key">The patch weight's key; default <see cref="SiglipCheckpointKeys.PatchEmbeddingWeight"/>.</param>
    /// <returns>True when the entry was converted.</returns>
    /// <exception cref="KeyNotFoundException">The state dict has no <paramref name="key"/>.</exception>
    /// <exception cref="ArgumentException">The entry is neither 2-D nor a conv weight.</exception>
    public static bool ConvertStateDict(IDictionary<string, torch.Tensor> stateDict, string key = SiglipCheckpointKeys.PatchEmbeddingWeight)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(key);
        if (!stateDict.TryGetValue(key, out torch.Tensor? weight))
            throw new KeyNotFoundException($"The state dict has no '{key}'; pass the key of the patch-embedding weight.");
        if (weight.dim() == 2) return false;
        stateDict[key] = ConvWeightToLinear(weight);
        weight.Dispose();
        return true;
    }
}
