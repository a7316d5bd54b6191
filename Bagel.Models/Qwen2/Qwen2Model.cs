using Bagel.Core.Batching;
using Bagel.Models.Attention;
using Bagel.Models.Generation;
using Bagel.Models.Memory;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Qwen2;

/// <summary>
/// The packed Qwen2 backbone (the reference's <c>Qwen2Model.forward_train</c>): RoPE tables and the per-sample
/// attention structure are built once and shared by all layers; the final norm is per expert with MoE/MoT.
/// Returns the final-normed hidden states [L, H].
/// </summary>
public sealed class Qwen2Model : torch.nn.Module<Qwen2PackedInput, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Embedding embed_tokens;
    private readonly ModuleList<Qwen2PackedDecoderLayer> layers;
    private readonly Qwen2RMSNorm norm;
    private readonly Qwen2RMSNorm? norm_moe_gen;
    private readonly Qwen2RotaryEmbedding rotary_emb;
#pragma warning restore IDE1006

    /// <summary>Creates the backbone with freshly initialized weights (see <see cref="Qwen2Initialization"/>).</summary>
    /// <param name="config">The backbone config (validated here).</param>
    public Qwen2Model(Qwen2Config config) : base(nameof(Qwen2Model))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        embed_tokens = torch.nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = new ModuleList<Qwen2PackedDecoderLayer>([.. Enumerable.Range(0, config.NumHiddenLayers).Select(_ => Qwen2PackedDecoderLayer.Create(config))]);
        norm = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        if (config.UseMoe) norm_moe_gen = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        rotary_emb = new Qwen2RotaryEmbedding(config.HeadDim, config.RopeTheta);
        RegisterComponents();
    }

    /// <summary>The config this backbone was built from.</summary>
    public Qwen2Config Config { get; }

    /// <summary>The token embedding (<c>embed_tokens</c>), for the composite that scatters text embeddings into the pack.</summary>
    public Embedding EmbedTokens => embed_tokens;

    /// <summary>The RoPE tables (<c>rotary_emb</c>; no state-dict entries).</summary>
    public Qwen2RotaryEmbedding RotaryEmbedding => rotary_emb;

    /// <summary>
    /// Recompute each decoder layer in the backward pass instead of keeping its activations (activation checkpointing;
    /// default false). Gradients are the same; memory drops to one input per layer, time rises by about one forward.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>The decoder layers.</summary>
    public IReadOnlyList<Qwen2PackedDecoderLayer> Layers => [.. layers];

    /// <summary>
    /// Callbacks around each decoder layer's forward and (with <see cref="GradientCheckpointing"/>) backward, e.g. to
    /// gather a sharded layer's parameters just before it runs and release them after; null (the default) for none.
    /// See <see cref="IDecoderLayerHooks"/> for the order and for when a hook may release parameter storage. The
    /// composite models (<c>BagelModel</c>, <see cref="Qwen2ForCausalLM"/>) run their decoder layers through this
    /// backbone, so the hooks installed here see every layer they run.
    /// </summary>
    public IDecoderLayerHooks? LayerHooks { get; set; }

    /// <inheritdoc />
    public override torch.Tensor forward(Qwen2PackedInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = torch.NewDisposeScope();
        var packed_sequence = input.PackedSequence;
        CheckLengths(input);
        torch.Tensor? emptyGen = input.PackedUndTokenIndexes is { } u && input.PackedGenTokenIndexes is null ? torch.empty(0, torch.int64, u.device) : null;
        Qwen2TokenRouting? routing = input.PackedUndTokenIndexes is { } und
            ? new Qwen2TokenRouting(und, input.PackedGenTokenIndexes ?? emptyGen!)
            : null;
        if (Config.UseMoe && routing is null)
            throw new Qwen2InputException($"layer_module {Config.LayerModule} needs PackedUndTokenIndexes (text and ViT positions).");

        if (Config.FreezeUnd)
            packed_sequence = routing is null ? packed_sequence.detach() : routing.DetachUnd(packed_sequence);

        var (cos, sin) = rotary_emb.forward(input.PackedPositionIds, packed_sequence.dtype);
        PackedAttentionMask attention_mask = PackedAttentionMask.Build(input.Samples, packed_sequence.device);
        bool checkpoint = GradientCheckpointing && training && torch.is_grad_enabled();
        IDecoderLayerHooks? hooks = LayerHooks;
        bool releasable = checkpoint || !torch.is_grad_enabled();
        try
        {
            for (int i = 0; i < layers.Count; i++)
            {
                Qwen2PackedDecoderLayer decoder_layer = layers[i];
                var layer_input = new Qwen2LayerInput(packed_sequence, attention_mask, cos, sin, Config.UseMoe ? routing : null);
                long[]? sizes = BeforeLayer(hooks, i, releasable);
                if (!checkpoint)
                    packed_sequence = decoder_layer.forward(layer_input);
                else if (hooks is null)
                    packed_sequence = ActivationCheckpoint.Apply(x => decoder_layer.forward(layer_input with { PackedSequence = x }), packed_sequence);
                else
                {
                    int index = i;
                    packed_sequence = ActivationCheckpoint.Apply(x => decoder_layer.forward(layer_input with { PackedSequence = x }), packed_sequence,
                        () => hooks.BeforeBackward(index), () => hooks.AfterBackward(index));
                }
                AfterLayer(hooks, i, releasable, sizes);
            }
        }
        finally
        {
            if (checkpoint)
            {
                // The backward pass recomputes the layers with these inputs: keep them alive in the caller's scope.
                attention_mask.MoveToOuterDisposeScope();
                cos.MoveToOuterDisposeScope();
                sin.MoveToOuterDisposeScope();
                emptyGen?.MoveToOuterDisposeScope(); // only what this forward created; the caller's index tensors stay the caller's
            }
            else
            {
                attention_mask.Dispose();
            }
        }

        if (!Config.UseMoe) return norm.forward(packed_sequence).MoveToOuterDisposeScope();
        var und_rows = norm.forward(routing!.SelectUnd(packed_sequence));
        if (Config.FreezeUnd) und_rows = und_rows.detach();
        var gen_rows = norm_moe_gen!.forward(routing.SelectGen(packed_sequence));
        return routing.Merge(und_rows, gen_rows, packed_sequence.shape[0]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The inference forward (the reference's <c>Qwen2Model.forward_inference</c>) for one sequence: a query segment
    /// attends to the prefix held in <paramref name="cache"/> and to itself (causally or fully), with the und/gen
    /// routing the reference uses at inference — mode 'und' (every token through the understanding weights) when
    /// <paramref name="genTokenIndexes"/> is null, mode 'gen' (the listed rows through the <c>_moe_gen</c> experts,
    /// the others through the understanding ones) otherwise.
    /// </summary>
    /// <param name="querySequence">[n, H] input hidden states of the segment.</param>
    /// <param name="positionIds">[n] int64 RoPE positions.</param>
    /// <param name="cache">The prefix's keys and values (possibly empty).</param>
    /// <param name="causal">Causal attention within the segment (text) or full (an image's tokens).</param>
    /// <param name="updateCache">Append the segment's keys/values to <paramref name="cache"/> (prefill) or not
    /// (a sampler step).</param>
    /// <param name="genTokenIndexes">Ascending int64 rows of the segment that are VAE latent tokens, or null for mode 'und'.</param>
    /// <returns>[n, H] final-normed hidden states; the caller owns them.</returns>
    /// <exception cref="Qwen2InputException">The shapes disagree, or gen rows are given to a dense backbone.</exception>
    public torch.Tensor ForwardInference(torch.Tensor querySequence, torch.Tensor positionIds, KvCache cache, bool causal,
        bool updateCache, torch.Tensor? genTokenIndexes = null)
    {
        ArgumentNullException.ThrowIfNull(querySequence);
        ArgumentNullException.ThrowIfNull(positionIds);
        ArgumentNullException.ThrowIfNull(cache);
        long n = querySequence.shape[0];
        if (querySequence.dim() != 2 || positionIds.shape[0] != n || cache.LayerCount != layers.Count)
            throw new Qwen2InputException(
                $"Inference got a segment [{string.Join(", ", querySequence.shape)}] with {positionIds.shape[0]} position ids and a cache of {cache.LayerCount} layers; expected [n, H], n positions and {layers.Count} layers.");
        if (genTokenIndexes is not null && !Config.UseMoe)
            throw new Qwen2InputException($"layer_module {Config.LayerModule} has no gen experts; pass no gen rows.");
        using var scope = torch.NewDisposeScope();
        var device = querySequence.device;
        Qwen2TokenRouting? routing = null;
        if (Config.UseMoe)
        {
            var gen = genTokenIndexes ?? torch.empty(0, torch.int64, device);
            var isUnd = torch.ones(n, torch.@bool, device).index_fill_(0, gen, false);
            routing = new Qwen2TokenRouting(isUnd.nonzero().squeeze(1), gen);
        }
        var (cos, sin) = rotary_emb.forward(positionIds, querySequence.dtype);
        // The layers read their attention structure from the cache; this placeholder is carried but not used (an
        // all-causal sample holds no mask tensor, so it costs nothing).
        using PackedAttentionMask unused = PackedAttentionMask.Build([SampleLayout.FromSplits(new AttentionSplit((int)n, AttentionMode.Causal))], device);
        var packed_sequence = querySequence;
        IDecoderLayerHooks? hooks = LayerHooks;
        bool releasable = !torch.is_grad_enabled();
        for (int i = 0; i < layers.Count; i++)
        {
            var attention = new KvCacheAttention(cache, i, causal, updateCache);
            long[]? sizes = BeforeLayer(hooks, i, releasable);
            packed_sequence = layers[i].forward(new Qwen2LayerInput(packed_sequence, unused, cos, sin, routing, attention));
            AfterLayer(hooks, i, releasable, sizes);
        }
        if (routing is null) return norm.forward(packed_sequence).MoveToOuterDisposeScope();
        var und_rows = norm.forward(routing.SelectUnd(packed_sequence));
        var gen_rows = norm_moe_gen!.forward(routing.SelectGen(packed_sequence));
        return routing.Merge(und_rows, gen_rows, n).MoveToOuterDisposeScope();
    }

    /// <summary>Calls <see cref="IDecoderLayerHooks.BeforeForward"/>; when the layer's parameters may not be released
    /// afterwards, returns their element counts for <see cref="AfterLayer"/> to check.</summary>
    private long[]? BeforeLayer(IDecoderLayerHooks? hooks, int index, bool releasable)
    {
        if (hooks is null) return null;
        using (torch.no_grad()) hooks.BeforeForward(index, releasable);
        return releasable ? null : [.. layers[index].parameters().Select(p => p.numel())];
    }

    private void AfterLayer(IDecoderLayerHooks? hooks, int index, bool releasable, long[]? sizes)
    {
        if (hooks is null) return;
        using (torch.no_grad()) hooks.AfterForward(index, releasable);
        if (sizes is null) return;
        int k = 0;
        foreach ((string name, Parameter parameter) in layers[index].named_parameters())
        {
            if (parameter.numel() != sizes[k++])
                throw new InvalidOperationException(
                    $"The decoder-layer hook ({hooks.GetType().Name}) changed layers.{index}.{name} from {sizes[k - 1]} to {parameter.numel()} elements in AfterForward, but this forward records an autograd graph that holds the parameters (no activation checkpointing): releasing a layer's parameters is only allowed when parametersReleasable is true (turn GradientCheckpointing on).");
        }
    }

    private static void CheckLengths(Qwen2PackedInput input)
    {
        long length = input.PackedSequence.shape[0];
        long samples = input.Samples.Sum(s => (long)s.Length);
        if (input.PackedSequence.dim() != 2 || samples != length || input.PackedPositionIds.shape[0] != length)
            throw new Qwen2InputException(
                $"The packed sequence has shape [{string.Join(", ", input.PackedSequence.shape)}], the samples sum to {samples} tokens and there are {input.PackedPositionIds.shape[0]} position ids; all three lengths must agree.");
    }
}
