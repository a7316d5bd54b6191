namespace Bagel.Models.Generation;

/// <summary>
/// One conditioning context of the interleaved inferencer (the reference's <c>gen_context</c> dict): the KV cache of
/// everything fed so far, its length (<c>kv_lens</c>) and the next RoPE position (<c>ropes</c>). One sequence only,
/// as in the reference. Owns its cache.
/// </summary>
public sealed class GenerationContext : IDisposable
{
    /// <summary>An empty context (the reference's <c>init_gen_context</c>).</summary>
    /// <param name="layers">The number of decoder layers.</param>
    public GenerationContext(int layers) : this(new KvCache(layers), 0, 0) { }

    private GenerationContext(KvCache cache, long kvLength, long rope)
    {
        Cache = cache;
        KvLength = kvLength;
        Rope = rope;
    }

    /// <summary>The text segments appended so far (token ids without bos/eos), in order: what a sampler without the
    /// prefix cache (<see cref="ImageGenerationOptions.UsePrefixCache"/> false) prefills again at every step.</summary>
    internal List<IReadOnlyList<int>> TextSegments { get; private init; } = [];

    /// <summary>The cached keys and values.</summary>
    public KvCache Cache { get; }

    /// <summary>Tokens in the cache (<c>kv_lens[0]</c>).</summary>
    public long KvLength { get; internal set; }

    /// <summary>The RoPE position the next segment starts at (<c>ropes[0]</c>); an image occupies one position.</summary>
    public long Rope { get; internal set; }

    /// <summary>A deep copy (the reference's <c>deepcopy(gen_context)</c>).</summary>
    /// <returns>A new context owning a copy of the cache.</returns>
    public GenerationContext Clone() => new(Cache.Clone(), KvLength, Rope) { TextSegments = [.. TextSegments] };

    /// <inheritdoc />
    public void Dispose() => Cache.Dispose();
}
