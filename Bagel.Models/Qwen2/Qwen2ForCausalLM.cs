using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Qwen2;

/// <summary>
/// The backbone plus the untied <c>lm_head</c> (the reference's <c>Qwen2ForCausalLM</c>). In BAGEL checkpoints its
/// keys sit under <c>language_model.</c> (see <see cref="Qwen2CheckpointKeys"/>). <see cref="forward"/> returns the
/// final hidden states, as the reference's <c>forward_train</c> does; <see cref="ComputeLogits"/> applies the head to
/// the rows that carry a CE loss.
/// </summary>
public sealed class Qwen2ForCausalLM : torch.nn.Module<Qwen2PackedInput, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Qwen2Model model;
    private readonly Linear lm_head;
#pragma warning restore IDE1006

    /// <summary>Creates the model with Transformers-style initial weights (<see cref="Qwen2Initialization.InitializeWeights"/>).</summary>
    /// <param name="config">The backbone config.</param>
    /// <param name="generator">The random source of the initial weights; null uses torch's global generator.</param>
    public Qwen2ForCausalLM(Qwen2Config config, torch.Generator? generator = null) : base(nameof(Qwen2ForCausalLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        model = new Qwen2Model(config);
        lm_head = torch.nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
        Qwen2Initialization.InitializeWeights(this, config.InitializerRange, generator);
    }

    /// <summary>The config.</summary>
    public Qwen2Config Config => model.Config;

    /// <summary>The backbone (<c>model</c>).</summary>
    public Qwen2Model Model => model;

    /// <summary>The output head (<c>lm_head</c>, [V, H], no bias).</summary>
    public Linear LmHead => lm_head;

    /// <inheritdoc />
    public override torch.Tensor forward(Qwen2PackedInput input) => model.forward(input);

    /// <summary><c>lm_head(hidden)</c>.</summary>
    /// <param name="hidden">[N, H] final hidden rows (e.g. <c>h[ce_loss_indexes]</c>).</param>
    /// <returns>[N, V] logits.</returns>
    public torch.Tensor ComputeLogits(torch.Tensor hidden) => lm_head.call(hidden);
}
