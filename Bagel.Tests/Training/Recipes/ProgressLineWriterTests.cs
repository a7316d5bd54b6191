using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Recipes;

public sealed class ProgressLineWriterTests
{
    [Fact]
    public void LogLinesEraseTheProgressLineAndRedrawItBelow()
    {
        using var inner = new StringWriter { NewLine = "\n" };
        using var writer = new ProgressLineWriter(inner);

        writer.SetProgress("bar 1");
        writer.WriteLine("a log record");
        writer.ClearProgress();
        writer.WriteLine("after");

        const string Erase = ProgressLineWriter.EraseLine;
        Assert.Equal($"{Erase}bar 1{Erase}a log record\nbar 1{Erase}after\n", inner.ToString());
    }

    [Fact]
    public void LinesOfTheOtherStreamAlsoEraseAndRedrawTheProgressLine()
    {
        using var terminal = new StringWriter { NewLine = "\n" };
        using var writer = new ProgressLineWriter(terminal);
        using TextWriter stdout = writer.Beside(terminal);

        stdout.WriteLine("no bar yet");
        writer.SetProgress("bar");
        stdout.WriteLine("(step=0000001) line");

        const string Erase = ProgressLineWriter.EraseLine;
        Assert.Equal($"no bar yet\n{Erase}bar{Erase}(step=0000001) line\nbar", terminal.ToString());
    }
}
