using Bagel.Data.Config;

namespace Bagel.DataTools;

/// <summary><c>parquet-info</c>: writes the parquet_info JSON of a shard folder with <see cref="ParquetInfo.WriteForFolderAsync"/>.</summary>
internal static class ParquetInfoCommand
{
    public const string Usage =
        "parquet-info --shards DIR --out FILE [--relative]\n" +
        "      Writes the parquet_info JSON ({\"<shard>\": {\"num_row_groups\": N, \"num_rows\": M}}) for every *.parquet in DIR.\n" +
        "      --relative  keys relative to FILE's folder (portable; Bagel.NET reads them). Default: absolute paths, which\n" +
        "                  the reference's loader also reads";

    public static async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var parsed = new CommandArguments(args, ["shards", "out"], ["relative"]);
        string shards = parsed.Required("shards"), output = parsed.Required("out");
        int count = await ParquetInfo.WriteForFolderAsync(shards, output, parsed.Flag("relative"), cancellationToken);
        var info = ParquetInfo.Load(output);
        long rowGroups = 0, rows = 0;
        foreach (string shard in Directory.GetFiles(shards, "*.parquet"))
        {
            var facts = info.Find(shard)!;
            rowGroups += facts.NumRowGroups;
            rows += facts.NumRows;
        }
        Console.WriteLine($"wrote {Path.GetFullPath(output)}: {count} shards, {rowGroups} row groups, {rows} rows");
        return 0;
    }
}
