namespace Bagel.Core.Randomness;

/// <summary>Draws built on the <see cref="IRandomSource"/> primitives, in the reference's order of primitive draws.</summary>
public static class RandomSourceExtensions
{
    /// <summary>
    /// Shuffles <paramref name="items"/> in place with Fisher–Yates, walking i from the end down to 1 and swapping
    /// item i with item <c>NextInt(0, i + 1)</c>: the same loop as Python's <c>random.shuffle</c>, so replaying its
    /// <c>_randbelow</c> results reproduces its permutation.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="source">The random source.</param>
    /// <param name="items">The list to shuffle.</param>
    public static void Shuffle<T>(this IRandomSource source, IList<T> items)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(items);
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = (int)source.NextInt(0, i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Picks one item uniformly (reference: <c>random.choice(list)</c>; one <see cref="IRandomSource.NextInt"/> draw of the index).</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="source">The random source.</param>
    /// <param name="items">A non-empty list.</param>
    /// <returns>The chosen item.</returns>
    /// <exception cref="ArgumentException">The list is empty.</exception>
    public static T Choice<T>(this IRandomSource source, IReadOnlyList<T> items)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) throw new ArgumentException("Cannot choose from an empty list.", nameof(items));
        return items[(int)source.NextInt(0, items.Count)];
    }

    /// <summary>An integer in [<paramref name="minInclusive"/>, <paramref name="maxInclusive"/>] (reference: <c>random.randint(a, b)</c>).</summary>
    /// <param name="source">The random source.</param>
    /// <param name="minInclusive">The smallest value.</param>
    /// <param name="maxInclusive">The largest value.</param>
    /// <returns>The drawn value.</returns>
    public static long NextIntInclusive(this IRandomSource source, long minInclusive, long maxInclusive)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.NextInt(minInclusive, checked(maxInclusive + 1));
    }
}
