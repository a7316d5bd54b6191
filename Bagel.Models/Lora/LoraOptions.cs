namespace Bagel.Models.Lora;

/// <summary>
/// What to adapt and how, with PEFT's <c>LoraConfig</c> semantics (the fields are written to
/// <c>adapter_config.json</c> under PEFT's names): every <c>Linear</c> whose module path (the reference's state-dict
/// name, e.g. <c>language_model.model.layers.3.self_attn.q_proj_moe_gen</c>) matches <see cref="TargetModules"/> gets
/// a rank-<see cref="Rank"/> adapter <c>y = W·x + b + s·B·A·dropout(x)</c> with <c>s = alpha/r</c>
/// (or <c>alpha/sqrt(r)</c> with <see cref="UseRsLora"/>), A drawn as PEFT draws it (kaiming-uniform with a = sqrt(5),
/// i.e. U(±1/sqrt(in_features))) and B zero, so the adapted model starts equal to the base.
/// </summary>
public sealed class LoraOptions
{
    /// <summary>PEFT's default rank (<c>r</c>).</summary>
    public const int DefaultRank = 8;

    /// <summary>The adapter rank <c>r</c> (PEFT's default 8).</summary>
    public int Rank { get; init; } = DefaultRank;

    /// <summary><c>lora_alpha</c>; the scale is alpha/r (PEFT's default 8).</summary>
    public double Alpha { get; init; } = DefaultRank;

    /// <summary><c>lora_dropout</c>: dropout on the adapter's input in training mode (0 = none, PEFT's default).</summary>
    public double Dropout { get; init; }

    /// <summary>
    /// <c>target_modules</c>. A list (PEFT's list semantics): a module is adapted when its path equals an entry or ends
    /// with <c>"." + entry</c> (so <c>q_proj</c> picks the understanding expert's projection and <c>q_proj_moe_gen</c>
    /// the generation expert's, but <c>q_proj</c> also picks the ViT's <c>self_attn.q_proj</c>). A single entry
    /// starting with <c>regex:</c> is a regular expression that must match the whole path (PEFT's string semantics,
    /// <c>re.fullmatch</c>); <see cref="LoraTargets"/> holds ready ones. Every matched module must be a <c>Linear</c>.
    /// </summary>
    public IReadOnlyList<string> TargetModules { get; init; } = [LoraTargets.LanguageModel];

    /// <summary><c>use_rslora</c>: scale by alpha/sqrt(r) instead of alpha/r.</summary>
    public bool UseRsLora { get; init; }

    /// <summary><c>rank_pattern</c>: per-module ranks; a key is a regular expression matched against the end of the
    /// path (PEFT's <c>(.*\.)?(key)$</c>), the first matching key in order wins. Empty: <see cref="Rank"/> everywhere.</summary>
    public IReadOnlyList<KeyValuePair<string, int>> RankPattern { get; init; } = [];

    /// <summary><c>alpha_pattern</c>: per-module alphas, matched as <see cref="RankPattern"/>.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> AlphaPattern { get; init; } = [];

    /// <summary>Seed of the generator that draws every A (in module order); the same seed gives the same adapters.</summary>
    public long InitSeed { get; init; }

    /// <summary><c>base_model_name_or_path</c> written to <c>adapter_config.json</c> (e.g. the BAGEL-7B-MoT folder); optional.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>Every problem with these options (empty when valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        if (Rank < 1) failures.Add($"lora_rank: {Rank} must be at least 1.");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) failures.Add($"lora_alpha: {Alpha} must be a positive number.");
        if (!(Dropout >= 0 && Dropout < 1)) failures.Add($"lora_dropout: {Dropout} must be in [0, 1).");
        if (TargetModules is null || TargetModules.Count == 0 || TargetModules.Any(string.IsNullOrWhiteSpace))
            failures.Add("lora_targets: give at least one module name, suffix or 'regex:' pattern, none empty.");
        else if (TargetModules.Count > 1 && TargetModules.Any(t => t.StartsWith(LoraTargets.RegexPrefix, StringComparison.Ordinal)))
            failures.Add("lora_targets: a 'regex:' pattern must be the only target (PEFT takes either one regular expression or a list of names).");
        else
            foreach (string error in LoraTargets.PatternErrors(TargetModules)) failures.Add("lora_targets: " + error);
        foreach ((string key, int rank) in RankPattern ?? [])
            if (rank < 1) failures.Add($"rank_pattern['{key}']: {rank} must be at least 1.");
        foreach ((string key, double alpha) in AlphaPattern ?? [])
            if (!(alpha > 0)) failures.Add($"alpha_pattern['{key}']: {alpha} must be positive.");
        return failures;
    }
}
