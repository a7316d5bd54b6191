using Bagel.Core.Randomness;

namespace Bagel.Tests.Core.Randomness;

public sealed class RandomSourceExtensionsTests
{
    [Fact]
    public void ShuffleFollowsPythonsLoopOrder()
    {
        // Python's random.shuffle on [a, b, c, d] draws _randbelow(4), _randbelow(3), _randbelow(2) and swaps
        // x[i] with x[j] for i = 3, 2, 1. With draws 0, 2, 0: [d, b, c, a] -> [d, b, c, a] -> [b, d, c, a].
        var replay = new ReplayRandomSource([RecordedDraw.Integer(0), RecordedDraw.Integer(2), RecordedDraw.Integer(0)]);
        List<string> items = ["a", "b", "c", "d"];

        replay.Shuffle(items);

        Assert.Equal(["b", "d", "c", "a"], items);
        replay.EnsureFullyConsumed();
    }

    [Fact]
    public void SeededShuffleIsAPermutationAndDeterministic()
    {
        using var a = new SeededRandomSource(8);
        using var b = new SeededRandomSource(8);
        List<int> first = [.. Enumerable.Range(0, 50)];
        List<int> second = [.. Enumerable.Range(0, 50)];
        a.Shuffle(first);
        b.Shuffle(second);
        Assert.Equal(first, second);
        Assert.Equal(Enumerable.Range(0, 50), first.Order());
        Assert.NotEqual(Enumerable.Range(0, 50), first);
    }

    [Fact]
    public void ChoiceAndRandintDrawThroughNextInt()
    {
        var replay = new ReplayRandomSource([RecordedDraw.Integer(2), RecordedDraw.Integer(7)]);
        Assert.Equal("c", replay.Choice(["a", "b", "c"]));
        Assert.Equal(7, replay.NextIntInclusive(5, 7));
        Assert.Throws<ArgumentException>(() => replay.Choice(Array.Empty<int>()));
    }
}
