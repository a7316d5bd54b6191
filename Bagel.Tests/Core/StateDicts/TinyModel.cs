using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Core.StateDicts;

/// <summary>A small module with parameters and buffers (including an int64 one): fc1, norm, fc2.</summary>
internal static class TinyModel
{
    public static torch.nn.Module Create(long seed)
    {
        torch.manual_seed(seed);
        var model = Sequential(("fc1", Linear(3, 4)), ("norm", BatchNorm1d(4)), ("fc2", Linear(4, 2)));
        // Give the buffers seed-dependent values too, so that a load is visible in them.
        using (torch.no_grad())
        {
            foreach ((string name, torch.Tensor buffer) in model.named_buffers())
            {
                if (buffer.is_floating_point()) buffer.uniform_(0.5, 1.5);
                else buffer.fill_(seed);
            }
        }
        return model;
    }

    public static void AssertSameState(torch.nn.Module expected, torch.nn.Module actual)
    {
        Dictionary<string, torch.Tensor> left = expected.state_dict(), right = actual.state_dict();
        Assert.Equal(left.Keys.Order(), right.Keys.Order());
        foreach ((string key, torch.Tensor value) in left)
            Assert.True(value.Equals(right[key]), $"'{key}' differs");
    }
}

/// <summary>Collects log lines for assertions.</summary>
internal sealed class ListLogger : ILogger
{
    public List<(LogLevel Level, string Message)> Entries { get; } = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Add((logLevel, formatter(state, exception)));
}
