using System.Text;

namespace Bagel.Training.Recipes;

/// <summary>
/// A text writer that keeps one progress line at the bottom of a terminal: whole lines written through it (log
/// records) first erase the progress line, then it is drawn again below them. Used for stderr by
/// <see cref="TrainCommand"/> when the progress bar is on.
/// </summary>
public sealed class ProgressLineWriter : TextWriter
{
    /// <summary>ANSI: carriage return, then erase the whole line.</summary>
    public const string EraseLine = "\r\u001b[2K";

    private readonly TextWriter _inner;
    private readonly Lock _gate = new();
    private string? _progress;

    /// <summary>Wraps <paramref name="inner"/> (not disposed with this writer).</summary>
    public ProgressLineWriter(TextWriter inner) => _inner = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <inheritdoc />
    public override Encoding Encoding => _inner.Encoding;

    /// <summary>Replaces the progress line (drawn without a newline).</summary>
    public void SetProgress(string line)
    {
        lock (_gate)
        {
            _progress = line;
            _inner.Write(EraseLine + line);
            _inner.Flush();
        }
    }

    /// <summary>
    /// A <c>TrainerBuilder.OnStep</c> callback that draws <see cref="ProgressBarFormat"/>'s bar with the ETA after a
    /// step, at most once per <paramref name="interval"/> (and always after the last step).
    /// </summary>
    public Action<Loop.TrainingStepReport> StepReporter(long totalSteps, TimeSpan interval)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan? lastDrawn = null;
        long stepsThisRun = 0;
        return report =>
        {
            stepsThisRun++;
            long completed = report.Step + 1;
            if (lastDrawn is { } last && clock.Elapsed - last < interval && completed < totalSteps) return;
            lastDrawn = clock.Elapsed;
            SetProgress(ProgressBarFormat.Format(completed, totalSteps, stepsThisRun, clock.Elapsed));
        };
    }

    /// <summary>Erases the progress line and ends it, so that later output starts on a clean line.</summary>
    public void ClearProgress()
    {
        lock (_gate)
        {
            if (_progress is null) return;
            _inner.Write(EraseLine);
            _inner.Flush();
            _progress = null;
        }
    }

    /// <inheritdoc />
    public override void Write(char value)
    {
        lock (_gate) _inner.Write(value);
    }

    /// <inheritdoc />
    public override void Write(string? value)
    {
        lock (_gate) _inner.Write(value);
    }

    /// <inheritdoc />
    public override void WriteLine(string? value)
    {
        lock (_gate)
        {
            if (_progress is not null) _inner.Write(EraseLine);
            _inner.WriteLine(value);
            if (_progress is not null) _inner.Write(_progress);
            _inner.Flush();
        }
    }

    /// <inheritdoc />
    public override void Flush()
    {
        lock (_gate) _inner.Flush();
    }

    /// <summary>
    /// A writer for another stream that shares the terminal (stdout beside stderr): each whole line written through it
    /// first erases the progress line here, so the two never mix on one line, and the progress line is drawn again after.
    /// </summary>
    /// <param name="other">The other stream (not disposed with the returned writer).</param>
    public TextWriter Beside(TextWriter other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new BesideWriter(this, other);
    }

    private void WriteLineBeside(TextWriter other, string? value)
    {
        lock (_gate)
        {
            if (_progress is not null)
            {
                _inner.Write(EraseLine);
                _inner.Flush();
            }
            other.WriteLine(value);
            other.Flush();
            if (_progress is not null)
            {
                _inner.Write(_progress);
                _inner.Flush();
            }
        }
    }

    private sealed class BesideWriter(ProgressLineWriter owner, TextWriter other) : TextWriter
    {
        public override Encoding Encoding => other.Encoding;

        public override void Write(char value) => other.Write(value);

        public override void WriteLine(string? value) => owner.WriteLineBeside(other, value);

        public override void Flush() => other.Flush();
    }
}
