using Microsoft.Extensions.Options;

namespace Bagel.Core.Devices;

/// <summary>Plugs <see cref="ComputeOptions.Validate"/> into Microsoft.Extensions.Options validation.</summary>
public sealed class ComputeOptionsValidator : IValidateOptions<ComputeOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ComputeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<string> errors = options.Validate();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
