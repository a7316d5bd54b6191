using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Data.Samples;
using Bagel.Data.Sources;

namespace Bagel.Tests.Data.Pipeline;

/// <summary>Counts the samples the workers build, by wrapping their sample builders.</summary>
internal sealed class CountingBuilder
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public ISampleBuilder Wrap(ISampleBuilder inner) => new Counting(this, inner);

    private sealed class Counting(CountingBuilder owner, ISampleBuilder inner) : ISampleBuilder
    {
        public PackableSample? Build(RawSample raw, IRandomSource random)
        {
            Interlocked.Increment(ref owner._calls);
            return inner.Build(raw, random);
        }
    }
}
