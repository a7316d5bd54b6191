using TorchSharp;

namespace Bagel.Models.Generation;

/// <summary>
/// The keys and values of an already-processed prefix, per decoder layer (the reference's <c>NaiveCache</c> in
/// qwen2_navit.py): after RoPE and the QK norms, [N, kv_heads, hd] per layer, for one sequence. The cache owns its
/// tensors; dispose it when the context is no longer needed.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly torch.Tensor?[] _keys;
    private readonly torch.Tensor?[] _values;

    /// <summary>Creates an empty cache for <paramref name="layers"/> decoder layers.</summary>
    /// <param name="layers">The number of decoder layers (<c>num_hidden_layers</c>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="layers"/> is not positive.</exception>
    public KvCache(int layers)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        _keys = new torch.Tensor?[layers];
        _values = new torch.Tensor?[layers];
    }

    /// <summary>The number of decoder layers.</summary>
    public int LayerCount => _keys.Length;

    /// <summary>The number of cached tokens (the reference's <c>seq_lens</c>): 0 while empty.</summary>
    public long Length => _keys[0]?.shape[0] ?? 0;

    /// <summary>The cached keys of layer <paramref name="layer"/> ([N, kv_heads, hd]), or null while empty; owned by the cache.</summary>
    /// <param name="layer">The layer index.</param>
    /// <returns>The keys or null.</returns>
    public torch.Tensor? KeysOf(int layer) => _keys[layer];

    /// <summary>The cached values of layer <paramref name="layer"/> ([N, kv_heads, hd]), or null while empty; owned by the cache.</summary>
    /// <param name="layer">The layer index.</param>
    /// <returns>The values or null.</returns>
    public torch.Tensor? ValuesOf(int layer) => _values[layer];

    /// <summary>Replaces the keys and values of one layer (the reference's <c>update_past_key_values</c>); the cache
    /// takes detached copies out of any dispose scope and disposes the previous ones.</summary>
    /// <param name="layer">The layer index.</param>
    /// <param name="keys">[N, kv_heads, hd] merged keys (prefix then new tokens).</param>
    /// <param name="values">[N, kv_heads, hd] merged values.</param>
    public void Set(int layer, torch.Tensor keys, torch.Tensor values)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        torch.Tensor k = keys.detach().clone().DetachFromDisposeScope();
        torch.Tensor v = values.detach().clone().DetachFromDisposeScope();
        _keys[layer]?.Dispose();
        _values[layer]?.Dispose();
        _keys[layer] = k;
        _values[layer] = v;
    }

    /// <summary>A deep copy (the reference's <c>deepcopy</c> of a generation context).</summary>
    /// <returns>A new cache owning copies of every tensor.</returns>
    public KvCache Clone()
    {
        var copy = new KvCache(LayerCount);
        for (int i = 0; i < LayerCount; i++)
            if (_keys[i] is { } k && _values[i] is { } v) copy.Set(i, k, v);
        return copy;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        for (int i = 0; i < LayerCount; i++)
        {
            _keys[i]?.Dispose();
            _values[i]?.Dispose();
            _keys[i] = _values[i] = null;
        }
    }
}
