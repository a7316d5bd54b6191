using Bagel.Data.Example;
using Bagel.Tests.Infrastructure;

namespace Bagel.Tests.Data.Example;

/// <summary>One default example dataset, written once for the read-back tests of a class.</summary>
public sealed class ExampleDatasetFixture : IAsyncLifetime
{
    private readonly TempDirectory _dir = new("bagel-example-");

    public ExampleDataOptions Options { get; private set; } = null!;

    public ExampleDataSummary Summary { get; private set; } = null!;

    public string Folder => Summary.Folder;

    public async ValueTask InitializeAsync()
    {
        Options = new ExampleDataOptions { OutputFolder = Path.Combine(_dir.Path, "bagel_example"), Seed = 7 };
        Summary = await new ExampleDataWriter(Options).WriteAsync(cancellationToken: TestContext.Current.CancellationToken);
    }

    public ValueTask DisposeAsync()
    {
        _dir.Dispose();
        return ValueTask.CompletedTask;
    }
}
