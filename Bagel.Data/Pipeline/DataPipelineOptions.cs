using Bagel.Data.Packing;

namespace Bagel.Data.Pipeline;

/// <summary>Settings of the data pipeline, with the reference's names and defaults.</summary>
public sealed record DataPipelineOptions
{
    /// <summary><c>num_workers</c>: data workers per rank, each with its own slice, packer and buffer (default 4).
    /// 0 reads the whole rank slice in order as worker 0, as the reference does without worker processes.</summary>
    public int NumWorkers { get; init; } = 4;

    /// <summary><c>prefetch_factor</c>: batches each worker may build ahead of the trainer (default 2).</summary>
    public int PrefetchFactor { get; init; } = 2;

    /// <summary><c>data_seed</c>: seeds the unit shuffle (identical on every rank) and every data random stream (default 42).</summary>
    public long DataSeed { get; init; } = 42;

    /// <summary>This process's rank (default 0).</summary>
    public int Rank { get; init; }

    /// <summary>The number of ranks (default 1).</summary>
    public int WorldSize { get; init; } = 1;

    /// <summary>Token budgets, dropout probabilities and position grids of the packer.</summary>
    public PackingOptions Packing { get; init; } = new();

    /// <summary>Throws one <see cref="ArgumentException"/> listing every invalid value.</summary>
    public void Validate()
    {
        var errors = new List<string>();
        if (NumWorkers < 0) errors.Add($"num_workers must be zero or more (got {NumWorkers}).");
        if (PrefetchFactor < 1) errors.Add($"prefetch_factor must be 1 or more (got {PrefetchFactor}).");
        if (WorldSize < 1) errors.Add($"world size must be 1 or more (got {WorldSize}).");
        if (Rank < 0 || Rank >= WorldSize) errors.Add($"rank {Rank} is outside world size {WorldSize}.");
        try
        {
            Packing.Validate();
        }
        catch (ArgumentException ex)
        {
            errors.Add(ex.Message);
        }
        if (errors.Count > 0) throw new ArgumentException("Invalid data pipeline options: " + string.Join(" ", errors));
    }
}
