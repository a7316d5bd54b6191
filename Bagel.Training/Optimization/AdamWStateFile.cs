using System.Text.Json;
using Bagel.Core.SafeTensors;
using Bagel.Training.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// Saves and restores TorchSharp AdamW state as one safetensors file: tensors <c>state.{group}.{index}.exp_avg</c>,
/// <c>.exp_avg_sq</c> (and <c>.max_exp_avg_sq</c> with AMSGrad), plus a JSON metadata entry with each group's settings
/// and step counts. TorchSharp's own <c>save_state_dict</c> writes a private binary stream with no names or shapes,
/// so a mismatch would load silently wrong; this format checks every shape and names what differs.
/// </summary>
public static class AdamWStateFile
{
    /// <summary>File name in a checkpoint folder (the reference writes <c>optimizer.00000-of-0000N.pt</c> pickles instead).</summary>
    public const string FileName = "optimizer.safetensors";

    /// <summary>Metadata key holding <see cref="OptimizerStateDocument"/> JSON.</summary>
    public const string MetadataKey = "bagel.optimizer";

    /// <summary>Format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>Writes the state of <paramref name="optimizer"/> to <paramref name="path"/> atomically.</summary>
    public static void Save(AdamW optimizer, string path, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var pending = new List<PendingTensor>();
        var groups = new List<OptimizerGroupState>();
        foreach ((int g, AdamW.Options options, List<AdamW.State> states) in Groups(optimizer))
        {
            for (int i = 0; i < states.Count; i++)
            {
                pending.Add(PendingTensor.From($"state.{g}.{i}.exp_avg", states[i].exp_avg));
                pending.Add(PendingTensor.From($"state.{g}.{i}.exp_avg_sq", states[i].exp_avg_sq));
                if (states[i].max_exp_avg_sq is { } max) pending.Add(PendingTensor.From($"state.{g}.{i}.max_exp_avg_sq", max));
            }
            groups.Add(new OptimizerGroupState(options.LearningRate!.Value, options.InitialLearningRate, options.beta1!.Value,
                options.beta2!.Value, options.eps!.Value, options.weight_decay!.Value, options.amsgrad!.Value, [.. states.Select(s => s.step)]));
        }
        string json = JsonSerializer.Serialize(new OptimizerStateDocument(FormatVersion, groups), TrainingJsonContext.Default.OptimizerStateDocument);
        SafeTensorsWriter.WriteFile(path, pending, new Dictionary<string, string> { [MetadataKey] = json }, cancellationToken);
    }

    /// <summary>Restores the state saved at <paramref name="path"/> into <paramref name="optimizer"/> (same groups, same shapes).</summary>
    /// <exception cref="CheckpointException">When the file does not match the optimizer; the message names the group and tensor.</exception>
    public static void Load(AdamW optimizer, string path)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (!File.Exists(path)) throw new CheckpointException($"Optimizer state {path} does not exist.");
        using SafeTensorsReader reader = SafeTensorsReader.Open(path);
        if (!reader.Metadata.TryGetValue(MetadataKey, out string? json))
            throw new CheckpointException($"{path} has no '{MetadataKey}' metadata; it was not written by {nameof(AdamWStateFile)}.");
        OptimizerStateDocument document = JsonSerializer.Deserialize(json, TrainingJsonContext.Default.OptimizerStateDocument)
            ?? throw new CheckpointException($"{path}: '{MetadataKey}' metadata is null.");
        if (document.FormatVersion != FormatVersion)
            throw new CheckpointException($"{path} has optimizer format version {document.FormatVersion}; this build reads {FormatVersion}.");
        var groups = Groups(optimizer).ToList();
        if (groups.Count != document.Groups.Count)
            throw new CheckpointException($"{path} holds {document.Groups.Count} parameter groups but the optimizer has {groups.Count}. Freeze the same modules as the saved run.");
        using var noGrad = torch.no_grad();
        foreach ((int g, AdamW.Options options, List<AdamW.State> states) in groups)
        {
            OptimizerGroupState saved = document.Groups[g];
            if (saved.Steps.Count != states.Count)
                throw new CheckpointException($"{path}: group {g} holds {saved.Steps.Count} parameters but the optimizer's group has {states.Count}.");
            for (int i = 0; i < states.Count; i++)
            {
                CopyInto(reader, path, $"state.{g}.{i}.exp_avg", states[i].exp_avg);
                CopyInto(reader, path, $"state.{g}.{i}.exp_avg_sq", states[i].exp_avg_sq);
                if (states[i].max_exp_avg_sq is { } max) CopyInto(reader, path, $"state.{g}.{i}.max_exp_avg_sq", max);
                states[i].step = saved.Steps[i];
            }
            options.LearningRate = saved.LearningRate;
            options.InitialLearningRate = saved.InitialLearningRate;
            options.beta1 = saved.Beta1;
            options.beta2 = saved.Beta2;
            options.eps = saved.Eps;
            options.weight_decay = saved.WeightDecay;
        }
    }

    private static void CopyInto(SafeTensorsReader reader, string path, string name, torch.Tensor destination)
    {
        if (!reader.Contains(name)) throw new CheckpointException($"{path} has no tensor '{name}'.");
        try
        {
            reader.CopyInto(name, destination);
        }
        catch (ArgumentException e)
        {
            throw new CheckpointException($"{path}: {e.Message} The optimizer's parameters differ from the saved run's.", e);
        }
    }

    private static IEnumerable<(int Index, AdamW.Options Options, List<AdamW.State> States)> Groups(AdamW optimizer)
    {
        torch.optim.Optimizer.StateDictionary dict = optimizer.state_dict();
        for (int g = 0; g < dict.Options.Count; g++)
        {
            var options = (AdamW.Options)dict.Options[g];
            List<AdamW.State> states = [.. dict.StateIndexRef[g].Select(i => (AdamW.State)dict.State[i])];
            yield return (g, options, states);
        }
    }
}
