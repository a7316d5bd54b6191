using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Loop;

/// <summary>
/// The stop request of one run: the caller's token, and with <see cref="TrainerBuilder.StopOnSignals"/> the first
/// SIGINT or SIGTERM, whose default action (ending the process) is cancelled so that the loop can finish its step and
/// write a final checkpoint. A second signal is left to its default action, so a stuck run still ends on a second
/// Ctrl+C or <c>kill</c>.
/// </summary>
internal sealed partial class GracefulStop : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly ILogger _logger;
    private readonly Func<long> _currentStep;
    private int _signalled;

    private GracefulStop(CancellationToken caller, ILogger logger, Func<long> currentStep)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(caller);
        _logger = logger;
        _currentStep = currentStep;
    }

    /// <summary>Cancelled when the caller cancels or (when listening) the first signal arrives.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>The signal that stopped the run, or null.</summary>
    public PosixSignal? Signal { get; private set; }

    /// <summary>Starts listening to SIGINT and SIGTERM when <paramref name="onSignals"/> is set, until disposed.</summary>
    /// <param name="onSignals">Whether to listen.</param>
    /// <param name="caller">The caller's token, linked in.</param>
    /// <param name="logger">Says which signal arrived.</param>
    /// <param name="currentStep">The step in progress, for the log line.</param>
    public static GracefulStop Start(bool onSignals, CancellationToken caller, ILogger logger, Func<long> currentStep)
    {
        var stop = new GracefulStop(caller, logger, currentStep);
        if (!onSignals) return stop;
        foreach (PosixSignal signal in (PosixSignal[])[PosixSignal.SIGINT, PosixSignal.SIGTERM])
        {
            try
            {
                stop._registrations.Add(PosixSignalRegistration.Create(signal, stop.OnSignal));
            }
            catch (PlatformNotSupportedException)
            {
                LogNotSupported(logger, signal);
            }
        }
        return stop;
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Exchange(ref _signalled, 1) != 0) return; // the second signal keeps its default action
        context.Cancel = true;
        Signal = context.Signal;
        LogSignal(_logger, context.Signal, _currentStep());
        _source.Cancel();
    }

    /// <summary>Stops listening (the default signal actions apply again).</summary>
    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations) registration.Dispose();
        _source.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Received {Signal}: finishing step {Step}, then writing a final checkpoint (a second signal ends the process at once).")]
    private static partial void LogSignal(ILogger logger, PosixSignal signal, long step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "StopOnSignals: this platform cannot handle {Signal}; it ends the run without a final checkpoint.")]
    private static partial void LogNotSupported(ILogger logger, PosixSignal signal);
}
