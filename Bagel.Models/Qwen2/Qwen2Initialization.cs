using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Qwen2;

/// <summary>Initial weights of the backbone (model.md §8.1).</summary>
public static class Qwen2Initialization
{
    /// <summary>The marker in the names of gen-expert parameters.</summary>
    public const string GenExpertMarker = "_moe_gen";

    /// <summary>
    /// The Transformers rules the reference's <c>post_init</c> applies: Linear and Embedding weights N(0, σ), Linear
    /// biases 0, RMSNorm weights 1.
    /// </summary>
    /// <param name="module">Any module; its Linear, Embedding and <see cref="Qwen2RMSNorm"/> children are initialized.</param>
    /// <param name="initializerRange">σ (the config's <c>initializer_range</c>, 0.02).</param>
    /// <param name="generator">The random source; null uses torch's global generator.</param>
    public static void InitializeWeights(torch.nn.Module module, double initializerRange, torch.Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        using var noGrad = torch.no_grad();
        foreach ((string _, torch.nn.Module child) in module.named_modules())
        {
            switch (child)
            {
                case Linear linear:
                    linear.weight!.normal_(0.0, initializerRange, generator);
                    linear.bias?.zero_();
                    break;
                case Embedding embedding:
                    embedding.weight!.normal_(0.0, initializerRange, generator);
                    break;
                case Qwen2RMSNorm norm:
                    norm.Weight.fill_(1.0);
                    break;
            }
        }
    }

    /// <summary>
    /// The reference's <c>init_moe</c> (<c>copy_init_moe</c>, model.md §8.1): every parameter whose name contains
    /// <c>moe_gen</c> becomes a copy of its und twin (the name with <c>_moe_gen</c> removed), so the gen expert equals
    /// the und expert at step 0 (including <c>norm_moe_gen ← norm</c>).
    /// </summary>
    /// <param name="module">A backbone, or any module holding one (e.g. the BAGEL composite).</param>
    /// <returns>The number of parameters copied.</returns>
    /// <exception cref="InvalidOperationException">A gen parameter has no und twin of the same shape.</exception>
    public static int CopyUnderstandingToGeneration(torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        Dictionary<string, torch.Tensor> state = module.state_dict();
        int copied = 0;
        using var noGrad = torch.no_grad();
        foreach ((string name, Parameter parameter) in module.named_parameters())
        {
            if (!name.Contains(GenExpertMarker, StringComparison.Ordinal)) continue;
            string twin = name.Replace(GenExpertMarker, "", StringComparison.Ordinal);
            if (!state.TryGetValue(twin, out torch.Tensor? source) || !source.shape.SequenceEqual(parameter.shape))
                throw new InvalidOperationException($"Gen-expert parameter '{name}' has no und twin '{twin}' of the same shape to copy from.");
            parameter.copy_(source);
            copied++;
        }
        return copied;
    }
}
