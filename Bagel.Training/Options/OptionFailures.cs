using Microsoft.Extensions.Options;

namespace Bagel.Training.Options;

/// <summary>Collects every bad value of one options object, so validation reports them all at once.</summary>
internal sealed class OptionFailures
{
    private readonly List<string> _failures = [];

    public void Positive(string key, double value)
    {
        if (!(value > 0)) _failures.Add($"'{key}' is {value}; it must be greater than 0.");
    }

    public void NonNegative(string key, double value)
    {
        if (!(value >= 0)) _failures.Add($"'{key}' is {value}; it must be 0 or greater.");
    }

    public void Probability(string key, double value)
    {
        if (!(value is >= 0 and <= 1)) _failures.Add($"'{key}' is {value}; it must be a probability in [0, 1].");
    }

    public void OpenUnit(string key, double value)
    {
        if (!(value is >= 0 and < 1)) _failures.Add($"'{key}' is {value}; it must be in [0, 1).");
    }

    public void NotEmpty(string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) _failures.Add($"'{key}' is empty; give a value.");
    }

    public void OneOf(string key, string value, params string[] allowed)
    {
        if (!allowed.Contains(value, StringComparer.Ordinal))
            _failures.Add($"'{key}' is '{value}'; it must be one of {string.Join(", ", allowed.Select(a => $"'{a}'"))}.");
    }

    public void Add(string failure) => _failures.Add(failure);

    public ValidateOptionsResult ToResult() =>
        _failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(_failures);
}
