using System.Text.RegularExpressions;

namespace Bagel.Models.Lora;

/// <summary>
/// Target choices for <see cref="LoraOptions.TargetModules"/> and PEFT's matching rules. The ready patterns cover the
/// Qwen2 MoT layers' attention projections (<c>q/k/v/o_proj</c> and their <c>_moe_gen</c> twins) and MLPs
/// (<c>mlp</c> / <c>mlp_moe_gen</c> <c>gate/up/down_proj</c>), per expert or both.
/// </summary>
public static class LoraTargets
{
    /// <summary>The prefix that marks a target as one regular expression over the whole module path.</summary>
    public const string RegexPrefix = "regex:";

    /// <summary>Every attention and MLP projection of both experts in every language-model layer (flag value <c>llm</c>).</summary>
    public const string LanguageModel = RegexPrefix + @"language_model\.model\.layers\.\d+\.(self_attn\.[qkvo]_proj(_moe_gen)?|mlp(_moe_gen)?\.(gate|up|down)_proj)";

    /// <summary>The understanding expert's projections only (flag value <c>llm_und</c>).</summary>
    public const string UnderstandingExpert = RegexPrefix + @"language_model\.model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)";

    /// <summary>The generation expert's projections only (flag value <c>llm_gen</c>).</summary>
    public const string GenerationExpert = RegexPrefix + @"language_model\.model\.layers\.\d+\.(self_attn\.[qkvo]_proj_moe_gen|mlp_moe_gen\.(gate|up|down)_proj)";

    /// <summary>PEFT's special value <c>all-linear</c> (flag value <c>all_linear</c>): every <c>Linear</c> of the model but
    /// the output layer <c>language_model.lm_head</c> (the LLM, the connector, <c>vae2llm</c>/<c>llm2vae</c>, the timestep
    /// MLP and the ViT). Other modules are skipped, not refused; <c>adapter_config.json</c> lists the adapted paths.</summary>
    public const string AllLinear = "all-linear";

    /// <summary>The output layer <see cref="AllLinear"/> leaves out.</summary>
    public const string OutputLayer = "language_model.lm_head";

    /// <summary>
    /// Reads the <c>--lora_targets</c> flag: <c>llm</c>, <c>llm_und</c>, <c>llm_gen</c>, <c>all_linear</c>,
    /// <c>regex:PATTERN</c>, or a comma-separated list of module names/suffixes (PEFT's list semantics, e.g.
    /// <c>q_proj_moe_gen,v_proj_moe_gen,connector.fc1</c>).
    /// </summary>
    /// <param name="flag">The flag's value.</param>
    /// <returns>The targets for <see cref="LoraOptions.TargetModules"/>.</returns>
    public static IReadOnlyList<string> Parse(string flag)
    {
        ArgumentNullException.ThrowIfNull(flag);
        string value = flag.Trim();
        return value switch
        {
            "llm" => [LanguageModel],
            "llm_und" => [UnderstandingExpert],
            "llm_gen" => [GenerationExpert],
            "all_linear" => [AllLinear],
            _ when value.StartsWith(RegexPrefix, StringComparison.Ordinal) => [value],
            _ => [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
        };
    }

    /// <summary>Whether <paramref name="path"/> is selected by <paramref name="targets"/> (PEFT's
    /// <c>check_target_module_exists</c>: a regex must match the whole path; a list entry must equal the path or be a
    /// dot-separated suffix of it).</summary>
    public static bool Matches(IReadOnlyList<string> targets, string path)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(path);
        if (targets.Count == 1 && targets[0] == AllLinear) return path != OutputLayer;
        if (targets.Count == 1 && targets[0].StartsWith(RegexPrefix, StringComparison.Ordinal))
            return Regex.IsMatch(path, "^(?:" + targets[0][RegexPrefix.Length..] + ")$", RegexOptions.CultureInvariant);
        return targets.Any(t => path == t || path.EndsWith("." + t, StringComparison.Ordinal));
    }

    /// <summary>PEFT's <c>get_pattern_key</c>: the first key of <paramref name="pattern"/> that matches the end of
    /// <paramref name="path"/> as <c>(.*\.)?(key)$</c>, or null.</summary>
    public static string? PatternKey<T>(IEnumerable<KeyValuePair<string, T>> pattern, string path)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        foreach ((string key, T _) in pattern)
            if (Regex.IsMatch(path, @"^(.*\.)?(" + key + ")$", RegexOptions.CultureInvariant)) return key;
        return null;
    }

    /// <summary>The targets as PEFT's <c>target_modules</c> field: the regular expression (a JSON string) or the
    /// sorted list of names (for <see cref="AllLinear"/>, the adapted paths, as PEFT expands it).</summary>
    public static object ToPeftTargetModules(IReadOnlyList<string> targets, IEnumerable<string> adaptedPaths)
    {
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(adaptedPaths);
        if (targets.Count == 1 && targets[0] == AllLinear) targets = [.. adaptedPaths];
        if (targets.Count == 1 && targets[0].StartsWith(RegexPrefix, StringComparison.Ordinal)) return targets[0][RegexPrefix.Length..];
        return targets.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
    }

    internal static IEnumerable<string> PatternErrors(IReadOnlyList<string> targets)
    {
        if (targets.Count != 1 || !targets[0].StartsWith(RegexPrefix, StringComparison.Ordinal)) yield break;
        string? error = null;
        try
        {
            _ = new Regex(targets[0][RegexPrefix.Length..], RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            error = $"'{targets[0]}' is not a valid regular expression: {e.Message}";
        }
        if (error is not null) yield return error;
    }
}
