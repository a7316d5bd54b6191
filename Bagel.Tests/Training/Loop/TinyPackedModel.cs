using Bagel.Core.Batching;
using Bagel.Training.Loop;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Loop;

/// <summary>
/// A tiny real model over packed batches: text tokens and latent slots are embedded into one packed sequence, a
/// shared layer mixes channels, and two heads give the per-token CE (on <c>ce_loss_indexes</c> against
/// <c>packed_label_ids</c>) and the per-element squared error (on <c>mse_loss_indexes</c>, against a fixed target
/// derived from the latent position id). Token ids are folded into a small vocabulary to keep the model tiny.
/// </summary>
internal sealed class TinyPackedModel : ITrainableModel, IDisposable
{
    public const int Vocab = 64;
    public const int Width = 16;
    public const int LatentChannels = 4;
    private const int LatentPositions = 64;

    private readonly long _seed;
    private readonly int _decoderLayers;

    /// <summary>The model; with <paramref name="decoderLayers"/> &gt; 0 a tiny Qwen2 backbone (plain decoder layers,
    /// packed attention) runs between the mixing layer and the heads, for the per-layer hooks of parameter sharding.</summary>
    public TinyPackedModel(long seed, int decoderLayers = 0)
    {
        _seed = seed;
        _decoderLayers = decoderLayers;
        Network = Create(seed, decoderLayers);
    }

    /// <summary>Forward calls (one per micro-batch) whose losses are made NaN, to exercise the guard.</summary>
    public HashSet<int> NanAtCalls { get; } = [];

    public int Calls { get; private set; }

    /// <summary>torch's intra-op thread count at each forward call.</summary>
    public List<int> ForwardThreads { get; } = [];

    public Net Network { get; }

    public Module Module => Network;

    public Module CreateTwin() => Create(_seed + 1, _decoderLayers);

    public ModelLossOutputs Forward(PackedBatch batch)
    {
        bool poison = NanAtCalls.Contains(Calls++);
        ForwardThreads.Add(torch.get_num_threads());
        Tensor sequence = zeros([batch.SequenceLength, Width]);
        sequence.index_put_(Network.text_embed.forward(batch.PackedTextIds.remainder(Vocab)), batch.PackedTextIndexes);
        if (batch.Vae is { } vae)
        {
            Tensor timesteps = where(vae.PackedTimesteps.isfinite(), vae.PackedTimesteps, zeros_like(vae.PackedTimesteps)).sigmoid();
            Tensor latent = Network.latent_embed.forward(vae.PackedLatentPositionIds.remainder(LatentPositions)) + timesteps.unsqueeze(1) * Network.timestep_direction;
            sequence.index_put_(latent, vae.PackedVaeTokenIndexes);
        }
        Tensor hidden = functional.gelu(Network.mix.forward(sequence));
        if (Network.decoder is { } decoder)
            hidden = decoder.forward(new Bagel.Models.Qwen2.Qwen2PackedInput(hidden, batch.Samples, batch.PackedPositionIds));

        Tensor? ce = null;
        Tensor? ceWeights = null;
        if (batch.TextLoss is { } text)
        {
            Tensor logits = Network.lm_head.forward(hidden.index_select(0, text.CeLossIndexes));
            ce = functional.cross_entropy(logits, text.PackedLabelIds.remainder(Vocab), reduction: Reduction.None);
            ceWeights = text.CeLossWeights;
        }
        Tensor? mse = null;
        if (batch.Vae is { } noisy && noisy.MseLossIndexes.shape[0] > 0)
        {
            // The "clean latent" each slot should predict: a fixed pattern of its latent position.
            Tensor frequencies = arange(1, LatentChannels + 1, dtype: float32) * 0.3f;
            Tensor slotTargets = (noisy.PackedLatentPositionIds.remainder(LatentPositions).to(float32).unsqueeze(1) * frequencies).sin();
            Tensor targets = zeros([batch.SequenceLength, LatentChannels]).index_put_(slotTargets, noisy.PackedVaeTokenIndexes);
            Tensor predicted = Network.latent_head.forward(hidden.index_select(0, noisy.MseLossIndexes));
            mse = (predicted - targets.index_select(0, noisy.MseLossIndexes)).square();
        }
        if (poison)
        {
            ce = ce is null ? null : ce * double.NaN;
            mse = mse is null ? null : mse * double.NaN;
        }
        return new ModelLossOutputs(ce, ceWeights, mse);
    }

    public void Dispose() => Network.Dispose();

    private static Net Create(long seed, int decoderLayers)
    {
        torch.manual_seed(seed);
        return new Net(decoderLayers);
    }

    /// <summary>The module; fields are named as its state-dict keys.</summary>
    internal sealed class Net : Module
    {
#pragma warning disable IDE1006, SA1307 // lower-case fields give the state-dict key names
        public readonly Embedding text_embed = Embedding(Vocab, Width);
        public readonly Embedding latent_embed = Embedding(LatentPositions, Width);
        public readonly Parameter timestep_direction = Parameter(randn(Width) * 0.1);
        public readonly Linear mix = Linear(Width, Width);
        public readonly Linear lm_head = Linear(Width, Vocab);
        public readonly Linear latent_head = Linear(Width, LatentChannels);
        public readonly Bagel.Models.Qwen2.Qwen2Model? decoder; // null (not registered) without decoder layers
#pragma warning restore IDE1006, SA1307

        public Net(int decoderLayers = 0) : base("tiny_packed")
        {
            if (decoderLayers > 0)
            {
                decoder = new Bagel.Models.Qwen2.Qwen2Model(new Bagel.Models.Qwen2.Qwen2Config
                {
                    HiddenSize = Width, NumHiddenLayers = decoderLayers, NumAttentionHeads = 4, NumKeyValueHeads = 2, IntermediateSize = 24,
                    VocabSize = 8, RopeTheta = 1_000_000, LayerModule = Bagel.Models.Qwen2.Qwen2LayerModule.Qwen2DecoderLayer,
                });
            }
            RegisterComponents();
        }
    }
}
