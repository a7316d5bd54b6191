using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// Builds the AdamW over the parameters that require grad, in one or several groups: by default the flat-buffer
/// <see cref="FlatBufferAdamW"/>, or TorchSharp's per-tensor AdamW (bit-identical) when
/// <see cref="AdamWOptions.FlatBuffers"/> is false.
/// </summary>
public static class AdamWFactory
{
    /// <summary>One group with every trainable parameter of <paramref name="module"/>.</summary>
    public static AdamW Create(torch.nn.Module module, AdamWOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        return Create([new ParameterGroup("all", [.. module.parameters()])], options);
    }

    /// <summary>
    /// One AdamW group per <paramref name="groups"/> entry, each holding only its parameters that require grad; groups
    /// left empty are dropped.
    /// </summary>
    /// <exception cref="ArgumentException">No parameter requires grad, or a parameter is in two groups.</exception>
    public static AdamW Create(IEnumerable<ParameterGroup> groups, AdamWOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(groups);
        options ??= new AdamWOptions();
        var seen = new HashSet<IntPtr>();
        var built = new List<AdamW.ParamGroup>();
        foreach (ParameterGroup group in groups)
        {
            var trainable = new List<Parameter>();
            foreach (Parameter parameter in group.Parameters)
            {
                if (!seen.Add(parameter.Handle))
                    throw new ArgumentException($"A parameter of group '{group.Name}' is already in another group; each parameter belongs to one group.", nameof(groups));
                if (parameter.requires_grad) trainable.Add(parameter);
            }
            if (trainable.Count == 0) continue;
            built.Add(new AdamW.ParamGroup(trainable, lr: group.LearningRate ?? options.LearningRate,
                beta1: options.Beta1, beta2: options.Beta2, eps: options.Eps, weight_decay: group.WeightDecay ?? options.WeightDecay));
        }
        if (built.Count == 0)
            throw new ArgumentException("No parameter requires grad, so there is nothing to optimise. Check the freeze_* options.", nameof(groups));
        return options.FlatBuffers
            ? new FlatBufferAdamW(built, options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay, fusedKernel: options.FusedKernel)
            : torch.optim.AdamW(built, options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay);
    }
}
