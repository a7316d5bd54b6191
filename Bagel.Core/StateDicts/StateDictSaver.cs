using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Core.StateDicts;

/// <summary>
/// Saves a module's state dict through the streaming writer: each tensor is converted (if asked) and copied to
/// the CPU only when its turn comes, so at most one converted tensor exists at a time. Writes are atomic.
/// </summary>
public static class StateDictSaver
{
    /// <summary>Writes the state dict to one .safetensors file.</summary>
    /// <param name="module">The module to save.</param>
    /// <param name="path">The file to write (replaced atomically if it exists).</param>
    /// <param name="options">Dtype conversion, key map, metadata; null keeps everything as is.</param>
    /// <param name="cancellationToken">Checked between tensors; cancelling leaves no file behind.</param>
    public static void SaveFile(torch.nn.Module module, string path, StateDictSaveOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new StateDictSaveOptions();
        List<PendingTensor> tensors = Collect(module, options);
        SafeTensorsWriter.WriteFile(path, tensors, options.Metadata, cancellationToken);
        if (options.Logger is { } logger) StateDictLog.Saved(logger, tensors.Count, Path.GetFullPath(path));
    }

    /// <summary>Writes the state dict as a Hugging Face style checkpoint folder (single file or shards + index).</summary>
    /// <param name="module">The module to save.</param>
    /// <param name="folder">The destination folder.</param>
    /// <param name="layout">Shard size and naming; null uses the defaults (5 GB shards, index only when needed).
    /// Its metadata is used when <paramref name="options"/> has none.</param>
    /// <param name="options">Dtype conversion, key map, metadata; null keeps everything as is.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The path to open the checkpoint with (index or single file).</returns>
    public static string SaveCheckpoint(torch.nn.Module module, string folder, SafeTensorsCheckpointOptions? layout = null,
        StateDictSaveOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new StateDictSaveOptions();
        layout ??= new SafeTensorsCheckpointOptions();
        if (options.Metadata is not null)
            layout = new SafeTensorsCheckpointOptions
            {
                MaxShardBytes = layout.MaxShardBytes, AlwaysIndex = layout.AlwaysIndex, BaseName = layout.BaseName, Metadata = options.Metadata,
            };
        List<PendingTensor> tensors = Collect(module, options);
        string written = SafeTensorsCheckpoint.Write(folder, tensors, layout, cancellationToken);
        if (options.Logger is { } logger) StateDictLog.Saved(logger, tensors.Count, written);
        return written;
    }

    private static List<PendingTensor> Collect(torch.nn.Module module, StateDictSaveOptions options)
    {
        ArgumentNullException.ThrowIfNull(module);
        TorchRuntime.EnsureLoaded();
        var tensors = new List<PendingTensor>();
        var written = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach ((string key, torch.Tensor tensor) in module.state_dict())
        {
            string? fileKey = options.KeyMap is null ? key : options.KeyMap(key);
            if (fileKey is null) continue;
            if (!written.TryAdd(fileKey, key))
                throw new InvalidOperationException($"The key map sends both '{written[fileKey]}' and '{key}' to file key '{fileKey}'.");
            SafeTensorDType? dtype = tensor.is_floating_point() ? options.FloatingPointDType : null;
            // Detach so the writer's conversion does not record autograd history on the parameter.
            tensors.Add(new PendingTensor(SafeTensorsEntry.For(fileKey, tensor, dtype), () => tensor.detach()));
        }
        return tensors;
    }
}
