using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Images;
using Bagel.Data.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Data.Packing;

/// <summary>
/// Appends one sample to a packed batch exactly as the reference's <c>pack_sequence</c> does (training.md 4.3): text
/// items become <c>bos + ids</c> then <c>eos</c> (causal; labels shifted by one with weight 1/sqrt(n+1)); ViT images
/// become start marker, patches, end marker (full, one RoPE id); VAE images become start marker, latent slots, end
/// marker (noise when they carry the loss, else full; one RoPE id, advancing only for clean images). Conditioning
/// dropout removes cfg items (one uniform draw each); a noisy image gets one standard-normal timestep draw.
/// </summary>
public sealed class SequencePacker
{
    private readonly PackingOptions _options;
    private readonly BagelSpecialTokenIds _tokens;

    /// <summary>Creates the packer.</summary>
    /// <param name="options">Dropout probabilities and position-id grids.</param>
    /// <param name="tokens">The marker token ids.</param>
    public SequencePacker(PackingOptions options, BagelSpecialTokenIds tokens)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _tokens = tokens ?? throw new ArgumentNullException(nameof(tokens));
    }

    /// <summary>The reference's <c>len2weight</c> with the 'square' reduction: 1/sqrt(x), and 0 for x = 0.</summary>
    /// <param name="length">The number of labelled tokens of a text item.</param>
    /// <returns>The per-token CE weight.</returns>
    public static float LengthToWeight(int length) => length == 0 ? 0f : (float)(1.0 / Math.Sqrt(length));

    /// <summary>Packs <paramref name="sample"/> at the end of <paramref name="batch"/>.</summary>
    /// <param name="batch">The batch being built; the sample's tokens start at its current length.</param>
    /// <param name="sample">The sample (its images are read, not consumed: the caller still owns them).</param>
    /// <param name="dropout">The uniform draws of the conditioning dropout (the reference's <c>random.random()</c>).</param>
    /// <param name="timesteps">The standard-normal timestep draws (the reference's <c>np.random.randn()</c>).</param>
    /// <param name="ownedTensors">Receives the ViT patch tensors created here; dispose them after the batch is built.</param>
    public void Pack(PackedBatchBuilder batch, PackableSample sample, IRandomSource dropout, IRandomSource timesteps, List<Tensor> ownedTensors)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(dropout);
        ArgumentNullException.ThrowIfNull(timesteps);
        ArgumentNullException.ThrowIfNull(ownedTensors);
        if (batch.VaePixelsPerLatentToken != _options.PixelsPerLatentToken)
            throw new ArgumentException(
                $"The batch builder cuts VAE images at {batch.VaePixelsPerLatentToken} pixels per latent token, but the packing options say {_options.PixelsPerLatentToken}; set PackedBatchBuilder.VaePixelsPerLatentToken from PackingOptions.PixelsPerLatentToken.", nameof(batch));
        int curr = batch.SequenceLength;
        int start = curr;
        int rope = 0;
        int textIndex = 0, imageIndex = 0;
        var splits = new List<AttentionSplit>();

        for (int p = 0; p < sample.Plan.Count; p++)
        {
            PlanItem item = sample.Plan[p];
            PlanItem? next = p + 1 < sample.Plan.Count ? sample.Plan[p + 1] : null;
            int splitStart = curr;
            switch (item.Kind)
            {
                case PlanItemKind.Text:
                {
                    int[] ids = sample.Texts[textIndex++];
                    if (item.EnableCfg && dropout.NextUniform() < _options.TextCondDropoutProb) continue; // removed; RoPE not advanced
                    int shifted = ids.Length + 1;
                    AddText(batch, _tokens.BosTokenId, curr);
                    for (int i = 0; i < ids.Length; i++) AddText(batch, ids[i], curr + 1 + i);
                    if (item.Loss)
                    {
                        float weight = LengthToWeight(shifted);
                        for (int i = 0; i < shifted; i++)
                        {
                            batch.CeLossIndexes.Add(curr + i);
                            batch.CeLossWeights.Add(weight);
                            batch.LabelIds.Add(i < ids.Length ? ids[i] : _tokens.EosTokenId);
                        }
                    }
                    curr += shifted;
                    AddText(batch, _tokens.EosTokenId, curr);
                    if (!item.SpecialTokenLoss && _options.SpecialTokenLoss && next is { Kind: PlanItemKind.VaeImage, Loss: true })
                        AddSpecialTokenLabel(batch, curr, _tokens.StartOfImage);
                    else
                        AddSpecialTokenLoss(batch, item, curr);
                    curr += 1;
                    int length = curr - splitStart;
                    for (int i = 0; i < length; i++) batch.PositionIds.Add(rope + i);
                    rope += length;
                    splits.Add(new AttentionSplit(length, AttentionMode.Causal));
                    break;
                }
                case PlanItemKind.VitImage:
                {
                    Tensor image = sample.Images[imageIndex++];
                    if (item.EnableCfg && dropout.NextUniform() < _options.VitCondDropoutProb)
                    {
                        rope += 1; // a dropped image still advances RoPE
                        continue;
                    }
                    AddText(batch, _tokens.StartOfImage, curr++);
                    Tensor patches = VitPatchify.Patchify(image, PackableSample.VitStride);
                    ownedTensors.Add(patches);
                    int count = (int)patches.shape[0];
                    for (int i = 0; i < count; i++) batch.VitTokenIndexes.Add(curr + i);
                    curr += count;
                    batch.AddVitImage(patches);
                    batch.VitPositionIds.AddRange(PositionIds(image, PackableSample.VitStride, _options.MaxNumPatchPerSide));
                    AddText(batch, _tokens.EndOfImage, curr);
                    AddSpecialTokenLoss(batch, item, curr);
                    curr += 1;
                    int length = curr - splitStart;
                    for (int i = 0; i < length; i++) batch.PositionIds.Add(rope);
                    rope += 1;
                    splits.Add(new AttentionSplit(length, AttentionMode.Full));
                    break;
                }
                case PlanItemKind.VaeImage:
                {
                    Tensor image = sample.Images[imageIndex++];
                    if (item.EnableCfg && dropout.NextUniform() < _options.VaeCondDropoutProb)
                    {
                        rope += 1;
                        continue;
                    }
                    AddText(batch, _tokens.StartOfImage, curr++);
                    LatentGrid grid = batch.AddVaeImage(image);
                    batch.LatentPositionIds.AddRange(PositionIds(image, _options.PixelsPerLatentToken, _options.MaxLatentSize));
                    int count = grid.TokenCount;
                    // Clean (conditioning) images get t_raw = -inf, i.e. t = sigmoid(-inf) = 0 in the model.
                    float timestep = item.Loss ? (float)timesteps.NextStandardNormal() : float.NegativeInfinity;
                    for (int i = 0; i < count; i++)
                    {
                        batch.VaeTokenIndexes.Add(curr + i);
                        batch.Timesteps.Add(timestep);
                        if (item.Loss) batch.MseLossIndexes.Add(curr + i);
                    }
                    curr += count;
                    AddText(batch, _tokens.EndOfImage, curr);
                    AddSpecialTokenLoss(batch, item, curr);
                    curr += 1;
                    int length = curr - splitStart;
                    for (int i = 0; i < length; i++) batch.PositionIds.Add(rope);
                    if (!item.Loss) rope += 1; // a noisy image shares its RoPE id with what follows
                    splits.Add(new AttentionSplit(length, item.Loss ? AttentionMode.Noise : AttentionMode.Full));
                    break;
                }
            }
        }
        batch.AddSample(new SampleLayout(curr - start, splits), sample.Index);
    }

    private IEnumerable<long> PositionIds(Tensor image, int patch, int gridSide) => _options.InterpolatePos
        ? FlattenedPositionIds.Interpolate((int)image.shape[1], (int)image.shape[2], patch, gridSide)
        : FlattenedPositionIds.Extrapolate((int)image.shape[1], (int)image.shape[2], patch, gridSide);

    private static void AddText(PackedBatchBuilder batch, int id, int position)
    {
        batch.TextIds.Add(id);
        batch.TextIndexes.Add(position);
    }

    private static void AddSpecialTokenLoss(PackedBatchBuilder batch, PlanItem item, int position)
    {
        if (item.SpecialTokenLoss) AddSpecialTokenLabel(batch, position, item.SpecialTokenLabel);
    }

    private static void AddSpecialTokenLabel(PackedBatchBuilder batch, int position, int label)
    {
        batch.CeLossIndexes.Add(position);
        batch.CeLossWeights.Add(1f);
        batch.LabelIds.Add(label);
    }
}
