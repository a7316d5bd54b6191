using Bagel.Models.Lora;
using Bagel.Training.Options;

namespace Bagel.Training.Lora;

/// <summary>The <c>--lora_*</c> flags (our extensions) as <see cref="LoraOptions"/>.</summary>
public static class LoraFlags
{
    /// <summary>Whether the flags ask for LoRA (<c>lora_rank</c> &gt; 0).</summary>
    public static bool Enabled(TrainingOptions options) => (options ?? throw new ArgumentNullException(nameof(options))).LoraRank > 0;

    /// <summary>The adapter options from <c>lora_rank</c>, <c>lora_alpha</c>, <c>lora_dropout</c> and <c>lora_targets</c>
    /// (the adapters' init seed is <c>global_seed</c>).</summary>
    public static LoraOptions ToOptions(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new LoraOptions
        {
            Rank = options.LoraRank,
            Alpha = options.LoraAlpha,
            Dropout = options.LoraDropout,
            TargetModules = LoraTargets.Parse(options.LoraTargets ?? ""),
            InitSeed = options.GlobalSeed,
        };
    }
}
