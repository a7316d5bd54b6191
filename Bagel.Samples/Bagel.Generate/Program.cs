using Bagel.Core.Native;
using Bagel.Generate;

// Bagel.Generate: generate / edit / ask from a checkpoint folder; see GenerateCommand for the flags.
TorchRuntime.EnsureLoaded();
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
return GenerateCommand.Run(args, Console.Out, Console.Error, stop.Token);
