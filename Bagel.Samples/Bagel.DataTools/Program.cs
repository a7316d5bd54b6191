using Bagel.Data.Config;
using Bagel.DataTools;
using Microsoft.Extensions.Logging;

// Commands: name -> (usage, run). Exit codes: 0 done, 1 the work failed (bad data or config), 2 bad command line, 130 cancelled.
var commands = new Dictionary<string, (string Usage, Func<string[], ILoggerFactory, CancellationToken, Task<int>> Run)>(StringComparer.Ordinal)
{
    ["example-data"] = (ExampleDataCommand.Usage, (a, l, ct) => ExampleDataCommand.RunAsync(a, l, ct)),
    ["parquet-info"] = (ParquetInfoCommand.Usage, (a, _, ct) => ParquetInfoCommand.RunAsync(a, ct)),
};

void PrintUsage(TextWriter to, string? only = null)
{
    to.WriteLine("usage: Bagel.DataTools <command> [options]");
    foreach ((string name, (string usage, _)) in commands)
        if (only is null || only == name) to.WriteLine("  " + usage);
}

if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    PrintUsage(Console.Out);
    return 0;
}
if (!commands.TryGetValue(args[0], out var command))
{
    Console.Error.WriteLine($"error: unknown command '{args[0]}'.");
    PrintUsage(Console.Error);
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true));
try
{
    return await command.Run(args[1..], loggers, cancel.Token);
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    PrintUsage(Console.Error, args[0]);
    return 2;
}
catch (Exception ex) when (ex is DataConfigException or DataConfigAggregateException)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("cancelled; nothing was left under the output name.");
    return 130;
}
