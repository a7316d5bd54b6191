using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Bagel.Data.Config;

/// <summary>
/// Typed, error-collecting access to a YAML (or JSON, which YAML reads too) configuration file. Every problem is
/// recorded with the file, line and key path, so a loader can report all of them at once.
/// Scalars follow PyYAML's YAML 1.1 reading where users rely on it: <c>2_007_040</c> is an integer and
/// <c>True</c>/<c>yes</c>/<c>on</c> are booleans.
/// </summary>
internal sealed class ConfigNode
{
    private ConfigNode(YamlNode node, string? file, string path, List<DataConfigException> errors)
    {
        Node = node;
        File = file;
        Path = path;
        Errors = errors;
    }

    public YamlNode Node { get; }

    public string? File { get; }

    public string Path { get; }

    public List<DataConfigException> Errors { get; }

    public int Line => (int)Node.Start.Line;

    public bool IsMapping => Node is YamlMappingNode;

    /// <summary>Parses a file; a syntax error becomes a <see cref="DataConfigException"/> naming the line.</summary>
    public static ConfigNode Load(string file)
    {
        if (!System.IO.File.Exists(file))
            throw new DataConfigException(file, string.Empty, "file not found.");
        var stream = new YamlStream();
        try
        {
            using var reader = new StreamReader(file);
            stream.Load(reader);
        }
        catch (YamlException ex)
        {
            throw new DataConfigException(file, string.Empty, $"not valid YAML/JSON: {ex.Message}", (int)ex.Start.Line, ex);
        }
        if (stream.Documents.Count == 0)
            throw new DataConfigException(file, string.Empty, "the file is empty.");
        return new ConfigNode(stream.Documents[0].RootNode, file, string.Empty, []);
    }

    public void Error(string message, string? key = null, int? line = null) =>
        Errors.Add(new DataConfigException(File, key is null ? Path : Join(Path, key), message, line ?? Line));

    /// <summary>The entries of a mapping in file order (records an error and returns none when not a mapping).</summary>
    public IEnumerable<(string Key, ConfigNode Value)> Entries()
    {
        if (Node is not YamlMappingNode map)
        {
            Error("expected a mapping (key: value pairs).");
            yield break;
        }
        foreach (var (key, value) in map.Children)
        {
            string name = key is YamlScalarNode s ? s.Value ?? string.Empty : key.ToString();
            yield return (name, new ConfigNode(value, File, Join(Path, name), Errors));
        }
    }

    /// <summary>Records an error for every key that is not allowed, listing the allowed ones.</summary>
    public void RejectUnknownKeys(IReadOnlyCollection<string> allowed, string what)
    {
        foreach (var (key, value) in Entries())
        {
            if (!allowed.Contains(key))
                Errors.Add(new DataConfigException(File, value.Path,
                    $"unknown key for {what}; allowed keys are: {string.Join(", ", allowed.Order(StringComparer.Ordinal))}.", value.Line));
        }
    }

    public ConfigNode? Child(string key)
    {
        if (Node is not YamlMappingNode map) return null;
        foreach (var (k, v) in map.Children)
        {
            if (k is YamlScalarNode s && s.Value == key) return new ConfigNode(v, File, Join(Path, key), Errors);
        }
        return null;
    }

    public string? String()
    {
        if (Node is YamlScalarNode { Value: { } value }) return value;
        Error("expected a text value.");
        return null;
    }

    public long? Integer()
    {
        if (Node is YamlScalarNode { Value: { } raw } &&
            long.TryParse(raw.Replace("_", string.Empty, StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
            return value;
        Error($"expected an integer, found '{Describe()}'.");
        return null;
    }

    public double? Number()
    {
        if (Node is YamlScalarNode { Value: { } raw } &&
            double.TryParse(raw.Replace("_", string.Empty, StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) &&
            double.IsFinite(value))
            return value;
        Error($"expected a finite number, found '{Describe()}'.");
        return null;
    }

    public bool? Boolean()
    {
        if (Node is YamlScalarNode { Value: { } raw })
        {
            switch (raw.ToLowerInvariant())
            {
                case "true" or "yes" or "on" or "1": return true;
                case "false" or "no" or "off" or "0": return false;
            }
        }
        Error($"expected true or false, found '{Describe()}'.");
        return null;
    }

    public IReadOnlyList<ConfigNode> Items()
    {
        if (Node is YamlSequenceNode seq)
            return seq.Children.Select((n, i) => new ConfigNode(n, File, $"{Path}[{i}]", Errors)).ToList();
        Error($"expected a list, found '{Describe()}'.");
        return [];
    }

    private string Describe() => Node switch
    {
        YamlScalarNode s => s.Value ?? "null",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => Node.NodeType.ToString(),
    };

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
