using Bagel.Data.Sources;

namespace Bagel.Tests.Data.Sources;

internal static class SourceTestHelpers
{
    public static Func<int, int> Seeded(int seed)
    {
        var random = new Random(seed);
        return n => random.Next(n);
    }

    public static async Task<List<RawSample>> TakeAsync(IAsyncEnumerable<RawSample> source, int count)
    {
        var list = new List<RawSample>();
        await foreach (var s in source)
        {
            list.Add(s);
            if (list.Count == count) break;
        }
        return list;
    }
}
