using System.Globalization;

namespace Bagel.DataTools;

/// <summary>A command line is wrong; the message says what and the app prints the command's usage.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Plain <c>--name value</c> / <c>--flag</c> parsing for one command: every option must be declared, values are
/// checked as they are read, and anything left over is an error.
/// </summary>
internal sealed class CommandArguments
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    /// <summary>Parses the arguments after the command name.</summary>
    /// <param name="args">The arguments.</param>
    /// <param name="valueOptions">Options that take a value (without the leading dashes).</param>
    /// <param name="flags">Options without a value.</param>
    public CommandArguments(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string> flags)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
                throw new UsageException($"unexpected argument '{arg}'; options start with '--'.");
            string name = arg[2..];
            string? inline = null;
            if (name.IndexOf('=', StringComparison.Ordinal) is var eq and >= 0) (name, inline) = (name[..eq], name[(eq + 1)..]);
            if (_values.ContainsKey(name)) throw new UsageException($"option '--{name}' is given twice.");
            if (flags.Contains(name))
            {
                if (inline is not null) throw new UsageException($"option '--{name}' takes no value.");
                _values[name] = null;
            }
            else if (valueOptions.Contains(name))
            {
                string? value = inline ?? (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null);
                if (string.IsNullOrEmpty(value)) throw new UsageException($"option '--{name}' needs a value.");
                _values[name] = value;
            }
            else
            {
                var known = valueOptions.Concat(flags).Select(o => "--" + o);
                throw new UsageException($"unknown option '--{name}'; this command accepts: {string.Join(", ", known)}.");
            }
        }
    }

    /// <summary>Whether a flag was given.</summary>
    public bool Flag(string name) => _values.ContainsKey(name);

    /// <summary>A required value.</summary>
    public string Required(string name) =>
        _values.TryGetValue(name, out var value) && value is not null ? value : throw new UsageException($"option '--{name}' is required.");

    /// <summary>An optional integer value.</summary>
    public int Integer(string name, int fallback)
    {
        if (!_values.TryGetValue(name, out var text) || text is null) return fallback;
        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new UsageException($"option '--{name}' needs an integer, got '{text}'.");
    }
}
