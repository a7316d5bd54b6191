using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Bagel.Training.Options;

/// <summary>
/// Reads the reference's command line (HfArgumentParser over its three argument classes) into configuration keys:
/// <c>--a_b v</c>, <c>--a-b v</c> and <c>--a_b=v</c>; unique prefixes (<c>--num_worker</c>); a bool flag alone means
/// true, or takes yes/true/t/y/1 and no/false/f/n/0 (any case); <c>--no_x</c> turns off a flag whose default is true;
/// the last repeat wins. Every unknown, ambiguous or malformed argument is reported at once.
/// </summary>
public static class ReferenceCommandLine
{
    private static readonly Dictionary<string, Type> Flags = typeof(ModelOptions).GetProperties()
        .Concat(typeof(DataOptions).GetProperties()).Concat(typeof(TrainingOptions).GetProperties())
        .Select(p => (Key: p.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name, p.PropertyType))
        .Where(p => p.Key is not null)
        .ToDictionary(p => p.Key!, p => p.PropertyType, StringComparer.Ordinal);

    // Bool flags whose default is true also get a --no_ form, as HfArgumentParser adds.
    private static readonly HashSet<string> NegatableFlags = TrueByDefault();

    /// <summary>Every flag name (snake_case), as the reference's parser knows them.</summary>
    public static IReadOnlyCollection<string> FlagNames => Flags.Keys;

    /// <summary>Parses <paramref name="args"/> into <c>snake_case key → value</c> pairs.</summary>
    /// <exception cref="InvalidTrainingOptionsException">Listing every argument that could not be read.</exception>
    public static IReadOnlyDictionary<string, string> Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var failures = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string argument = args[i];
            if (!argument.StartsWith("--", StringComparison.Ordinal) || argument.Length == 2)
            {
                failures.Add($"Argument '{argument}' is not a --flag; the trainer takes no positional arguments.");
                continue;
            }
            string body = argument[2..];
            int equals = body.IndexOf('=', StringComparison.Ordinal);
            string written = (equals < 0 ? body : body[..equals]).Replace('-', '_');
            string? inline = equals < 0 ? null : body[(equals + 1)..];
            if (!TryResolve(written, out string key, out bool negated, out string? error))
            {
                failures.Add(error!);
                if (inline is null && i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) i++;
                continue;
            }
            if (negated)
            {
                if (inline is not null) failures.Add($"'--no_{key}' takes no value.");
                values[key] = "false";
            }
            else if (Flags[key] == typeof(bool))
            {
                string? text = inline;
                if (text is null && i + 1 < args.Count && !args[i + 1].StartsWith('-')) text = args[++i];
                if (text is null) values[key] = "true";
                else if (ParseBool(text) is bool flag) values[key] = flag ? "true" : "false";
                else failures.Add($"'--{key}' is '{text}'; a bool flag takes yes/true/t/y/1 or no/false/f/n/0.");
            }
            else if (inline is not null) values[key] = inline;
            else if (i + 1 < args.Count) values[key] = args[++i];
            else failures.Add($"'--{key}' needs a value.");
        }
        return failures.Count == 0 ? values : throw new InvalidTrainingOptionsException(failures);
    }

    /// <summary>Parses <paramref name="args"/> and binds all three option sets from them (unset flags keep their defaults).</summary>
    public static TrainingConfiguration Bind(IReadOnlyList<string> args)
    {
        IReadOnlyDictionary<string, string> values = Parse(args);
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();
        return TrainingConfiguration.Bind(configuration, flat: true);
    }

    private static bool TryResolve(string written, out string key, out bool negated, out string? error)
    {
        key = "";
        negated = false;
        error = null;
        if (Flags.ContainsKey(written))
        {
            key = written;
            return true;
        }
        if (written.StartsWith("no_", StringComparison.Ordinal) && NegatableFlags.Contains(written[3..]))
        {
            (key, negated) = (written[3..], true);
            return true;
        }
        // argparse accepts any unique prefix of an option string, the --no_ forms included.
        List<(string Key, bool Negated)> matches =
        [
            .. Flags.Keys.Where(k => k.StartsWith(written, StringComparison.Ordinal)).Select(k => (k, false)),
            .. NegatableFlags.Where(k => ("no_" + k).StartsWith(written, StringComparison.Ordinal)).Select(k => (k, true)),
        ];
        if (matches.Count == 1)
        {
            (key, negated) = matches[0];
            return true;
        }
        error = matches.Count == 0
            ? $"Unknown flag '--{written}'."
            : $"Flag '--{written}' is ambiguous: it could be {string.Join(", ", matches.Select(m => "--" + (m.Negated ? "no_" : "") + m.Key).Order(StringComparer.Ordinal))}.";
        return false;
    }

    private static bool? ParseBool(string text) => text.ToLowerInvariant() switch
    {
        "yes" or "true" or "t" or "y" or "1" => true,
        "no" or "false" or "f" or "n" or "0" => false,
        _ => null,
    };

    private static HashSet<string> TrueByDefault()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (object defaults in new object[] { new ModelOptions(), new DataOptions(), new TrainingOptions() })
            foreach (PropertyInfo property in defaults.GetType().GetProperties())
                if (property.PropertyType == typeof(bool) && (bool)property.GetValue(defaults)!
                    && property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name is { } name)
                    set.Add(name);
        return set;
    }
}
