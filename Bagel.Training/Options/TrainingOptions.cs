using Microsoft.Extensions.Configuration;

namespace Bagel.Training.Options;

/// <summary>
/// The training flags of the reference's <c>TrainingArguments</c> (training.md 5.1): same snake_case names (as
/// configuration keys) and the same defaults. Validate with <see cref="TrainingOptionsValidator"/>.
/// </summary>
public sealed class TrainingOptions
{
    /// <summary>Configuration section these options bind from by default: <c>training</c>.</summary>
    public const string SectionName = "training";

    /// <summary>Train the generation branch (VAE latents, MSE loss); <c>false</c> for VLM-only. Default <c>true</c>.</summary>
    [ConfigurationKeyName("visual_gen")] public bool VisualGen { get; set; } = true;

    /// <summary>Train the understanding branch (ViT tokens); <c>false</c> for T2I-only. Default <c>true</c>.</summary>
    [ConfigurationKeyName("visual_und")] public bool VisualUnd { get; set; } = true;

    /// <summary>Folder for <c>log.txt</c> and metric files. Default <c>results</c>.</summary>
    [ConfigurationKeyName("results_dir")] public string ResultsDir { get; set; } = "results";

    /// <summary>Folder holding one subfolder per saved step. Default <c>results/checkpoints</c>.</summary>
    [ConfigurationKeyName("checkpoint_dir")] public string CheckpointDir { get; set; } = "results/checkpoints";

    /// <summary>W&amp;B project name (kept for the TensorBoard run name; we do not call W&amp;B). Default <c>bagel</c>.</summary>
    [ConfigurationKeyName("wandb_project")] public string WandbProject { get; set; } = "bagel";

    /// <summary>W&amp;B run name. Default <c>run</c>.</summary>
    [ConfigurationKeyName("wandb_name")] public string WandbName { get; set; } = "run";

    /// <summary>W&amp;B run id suffix (<c>{wandb_name}-run{wandb_runid}</c>). Default <c>0</c>.</summary>
    [ConfigurationKeyName("wandb_runid")] public string WandbRunid { get; set; } = "0";

    /// <summary>W&amp;B resume mode. Default <c>allow</c>.</summary>
    [ConfigurationKeyName("wandb_resume")] public string WandbResume { get; set; } = "allow";

    /// <summary>W&amp;B offline mode. Default <c>false</c>.</summary>
    [ConfigurationKeyName("wandb_offline")] public bool WandbOffline { get; set; }

    /// <summary>Seed of the per-rank global RNGs (<c>global_seed·world_size + rank</c>). Default <c>4396</c>.</summary>
    [ConfigurationKeyName("global_seed")] public int GlobalSeed { get; set; } = 4396;

    /// <summary>Resume fully from the largest complete checkpoint in <see cref="CheckpointDir"/>, else fall back to <see cref="ResumeFrom"/>. Default <c>false</c>.</summary>
    [ConfigurationKeyName("auto_resume")] public bool AutoResume { get; set; }

    /// <summary>Checkpoint (or released model) folder to load; <c>null</c> trains from scratch. Default <c>null</c>.</summary>
    [ConfigurationKeyName("resume_from")] public string? ResumeFrom { get; set; }

    /// <summary>Load only weights from <see cref="ResumeFrom"/>: no optimizer, scheduler, data status or step. Default <c>false</c>.</summary>
    [ConfigurationKeyName("resume_model_only")] public bool ResumeModelOnly { get; set; }

    /// <summary>With <see cref="ResumeModelOnly"/>, initialise the model from <c>ema.safetensors</c>. Default <c>false</c>.</summary>
    [ConfigurationKeyName("finetune_from_ema")] public bool FinetuneFromEma { get; set; }

    /// <summary>Read configs, tokenizer and VAE from <c>model_path</c> and the weights from <see cref="ResumeFrom"/>. Default <c>false</c>.</summary>
    [ConfigurationKeyName("finetune_from_hf")] public bool FinetuneFromHf { get; set; }

    /// <summary>Log every this many steps. Default <c>10</c>.</summary>
    [ConfigurationKeyName("log_every")] public int LogEvery { get; set; } = 10;

    /// <summary>Save a checkpoint every this many steps (and at the end). Default <c>2000</c>.</summary>
    [ConfigurationKeyName("save_every")] public int SaveEvery { get; set; } = 2000;

    /// <summary>Optimizer steps to train. Default <c>500000</c>.</summary>
    [ConfigurationKeyName("total_steps")] public int TotalSteps { get; set; } = 500000;

    /// <summary>Linear learning-rate warm-up steps (the first update uses lr 0 when positive). Default <c>2000</c>.</summary>
    [ConfigurationKeyName("warmup_steps")] public int WarmupSteps { get; set; } = 2000;

    /// <summary>Learning-rate schedule: <c>constant</c> or <c>cosine</c>. Default <c>constant</c>.</summary>
    [ConfigurationKeyName("lr_scheduler")] public string LrScheduler { get; set; } = "constant";

    /// <summary>Peak learning rate (2e-5 suggested for fine-tuning). Default <c>1e-4</c>.</summary>
    [ConfigurationKeyName("lr")] public double Lr { get; set; } = 1e-4;

    /// <summary>Final learning rate of the cosine schedule. Default <c>1e-7</c>.</summary>
    [ConfigurationKeyName("min_lr")] public double MinLr { get; set; } = 1e-7;

    /// <summary>AdamW β1. Default <c>0.9</c>.</summary>
    [ConfigurationKeyName("beta1")] public double Beta1 { get; set; } = 0.9;

    /// <summary>AdamW β2. Default <c>0.95</c>.</summary>
    [ConfigurationKeyName("beta2")] public double Beta2 { get; set; } = 0.95;

    /// <summary>AdamW ε. Default <c>1e-15</c>.</summary>
    [ConfigurationKeyName("eps")] public double Eps { get; set; } = 1e-15;

    /// <summary>EMA decay applied after every optimizer step. Default <c>0.9999</c>.</summary>
    [ConfigurationKeyName("ema")] public double Ema { get; set; } = 0.9999;

    /// <summary>Global gradient L2 norm clip. Default <c>1.0</c>.</summary>
    [ConfigurationKeyName("max_grad_norm")] public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>Shift of the flow-matching timestep distribution. Default <c>1.0</c>.</summary>
    [ConfigurationKeyName("timestep_shift")] public double TimestepShift { get; set; } = 1.0;

    /// <summary>Weight of the MSE loss. Default <c>1.0</c>.</summary>
    [ConfigurationKeyName("mse_weight")] public double MseWeight { get; set; } = 1.0;

    /// <summary>Weight of the CE loss. Default <c>1.0</c>.</summary>
    [ConfigurationKeyName("ce_weight")] public double CeWeight { get; set; } = 1.0;

    /// <summary>Weight CE tokens by the per-sample loss weights. Default <c>false</c>.</summary>
    [ConfigurationKeyName("ce_loss_reweighting")] public bool CeLossReweighting { get; set; }

    /// <summary>Target size of a packed batch. Default <c>32768</c>.</summary>
    [ConfigurationKeyName("expected_num_tokens")] public int ExpectedNumTokens { get; set; } = 32768;

    /// <summary>Micro-batches per optimizer step. Default <c>1</c>.</summary>
    [ConfigurationKeyName("gradient_accumulation_steps")] public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>Peak TFLOP/s of the device for MFU; 0 detects it from the GPU name. Default <c>0.0</c>.</summary>
    [ConfigurationKeyName("peak_device_tflops")] public double PeakDeviceTflops { get; set; } = 0.0;

    /// <summary>HYBRID_SHARD replica count; the replicas here follow from the world size and <c>num_shard</c>, so it must stay 1. Default <c>1</c>.</summary>
    [ConfigurationKeyName("num_replicate")] public int NumReplicate { get; set; } = 1;

    /// <summary>Ranks per shard group of <c>HYBRID_SHARD</c> and <c>_HYBRID_SHARD_ZERO2</c> (must divide the world size; at least the world size: one group, as FULL_SHARD or SHARD_GRAD_OP); no effect under the other strategies. Default <c>8</c>.</summary>
    [ConfigurationKeyName("num_shard")] public int NumShard { get; set; } = 8;

    /// <summary>
    /// What is sharded over the ranks (docs/sharding.md): <c>NO_SHARD</c> runs plain data parallelism; <c>FULL_SHARD</c>
    /// shards the parameters per decoder layer, the gradients, the AdamW state and the EMA; the default <c>HYBRID_SHARD</c>
    /// does so within groups of <c>num_shard</c> ranks (one process: nothing sharded; bf16 or custom parameter groups:
    /// plain data parallelism, logged); <c>OPTIMIZER_SHARD</c> (this port's name) shards the AdamW state and EMA;
    /// <c>SHARD_GRAD_OP</c> the gradients too, <c>_HYBRID_SHARD_ZERO2</c> within groups of <c>num_shard</c> ranks.
    /// Default <c>HYBRID_SHARD</c>.
    /// </summary>
    [ConfigurationKeyName("sharding_strategy")] public string ShardingStrategy { get; set; } = "HYBRID_SHARD";

    /// <summary>FSDP backward prefetch: <c>BACKWARD_PRE</c> or <c>BACKWARD_POST</c> (no effect in one process). Default <c>BACKWARD_PRE</c>.</summary>
    [ConfigurationKeyName("backward_prefetch")] public string BackwardPrefetch { get; set; } = "BACKWARD_PRE";

    /// <summary>Keep the sharded master weights and optimizer state in host memory: with a sharding strategy on the CPU that is
    /// where they already are; on CUDA it is not built yet (refused). Default <c>false</c>.</summary>
    [ConfigurationKeyName("cpu_offload")] public bool CpuOffload { get; set; }

    /// <summary>Turn off the LLM's gradients. Default <c>false</c>.</summary>
    [ConfigurationKeyName("freeze_llm")] public bool FreezeLlm { get; set; }

    /// <summary>Turn off the ViT's gradients. Default <c>false</c>.</summary>
    [ConfigurationKeyName("freeze_vit")] public bool FreezeVit { get; set; }

    /// <summary>Turn off the VAE's gradients (it is never optimised anyway). Default <c>true</c>.</summary>
    [ConfigurationKeyName("freeze_vae")] public bool FreezeVae { get; set; } = true;

    /// <summary>Detach the understanding path (embeddings, ViT, und experts); <c>lm_head</c> still trains. Default <c>false</c>.</summary>
    [ConfigurationKeyName("freeze_und")] public bool FreezeUnd { get; set; }

    /// <summary>Initialise every <c>*_moe_gen</c> parameter from its understanding twin. Default <c>true</c>.</summary>
    [ConfigurationKeyName("copy_init_moe")] public bool CopyInitMoe { get; set; } = true;

    /// <summary>Reference: packed flex attention. Here it selects nothing numerically different (our attention is always exact over the packed sequence); accepted so reference command lines run. Default <c>false</c>.</summary>
    [ConfigurationKeyName("use_flex")] public bool UseFlex { get; set; }

    // Bagel.NET extensions, not in the reference: held-out validation (issue 6, training.md 7 item 10).

    /// <summary>Not in the reference. Dataset mix YAML (same format as <c>dataset_config_file</c>, same registry) of the
    /// held-out validation set; empty turns validation off. Build the set with
    /// <c>Bagel.Training.Validation.ValidationSetFactory.CreateFromOptionsAsync</c>. Default empty (off).</summary>
    [ConfigurationKeyName("validation_config_file")] public string ValidationConfigFile { get; set; } = "";

    /// <summary>Not in the reference. Evaluate the validation set every this many completed steps (and at the end of the
    /// run); 0 evaluates at every checkpoint (<see cref="SaveEvery"/>). Default <c>0</c>.</summary>
    [ConfigurationKeyName("validate_every")] public int ValidateEvery { get; set; }

    /// <summary>Not in the reference. Packed batches taken per group of <see cref="ValidationConfigFile"/> (built once,
    /// evaluated every time). Default <c>4</c>.</summary>
    [ConfigurationKeyName("validation_batches")] public int ValidationBatches { get; set; } = DefaultValidationBatches;

    /// <summary>Not in the reference as a flag (its datasets set <c>special_token_loss</c> per plan item, 0 in every
    /// shipped one). When true, the closing <c>&lt;|im_end|&gt;</c> of a text item that is directly followed by an image
    /// to generate (a noisy VAE image, e.g. a T2I caption or an edit instruction) carries a CE label,
    /// <c>&lt;|vision_start|&gt;</c>, with weight 1: the model learns to open an image after the prompt. The packer applies
    /// it (<c>PackingOptions.SpecialTokenLoss</c>, wired by <see cref="DataWiring.ToPackingOptions"/>); it counts in the
    /// CE loss, so it needs the language-model head's CE path (<c>visual_und</c>). Default <c>false</c>.</summary>
    [ConfigurationKeyName("special_token_loss")] public bool SpecialTokenLoss { get; set; }

    /// <summary>Not in the reference (it always trains in bf16 under FSDP mixed precision). <c>bf16</c>: bf16 forward and
    /// backward over float32 master weights, AdamW state and EMA, with the reference's float32 islands; <c>fp32</c>:
    /// everything in float32; <c>auto</c>: bf16 on CUDA, fp32 on the CPU (docs/precision.md). Default <c>auto</c>.</summary>
    [ConfigurationKeyName("precision")] public string Precision { get; set; } = "auto";

    // Bagel.NET extensions, not in the reference: LoRA fine-tuning (issue 12; docs/lora.md).

    /// <summary>Not in the reference. Rank of the LoRA adapters; 0 (the default) trains the full model as the
    /// reference does, more trains only adapters on the frozen base (<c>Bagel.Models.Lora</c>). Default <c>0</c>.</summary>
    [ConfigurationKeyName("lora_rank")] public int LoraRank { get; set; }

    /// <summary>Not in the reference. LoRA's <c>lora_alpha</c>: the adapters are scaled by alpha/rank. Default <c>16</c>.</summary>
    [ConfigurationKeyName("lora_alpha")] public double LoraAlpha { get; set; } = 16;

    /// <summary>Not in the reference. Dropout on the adapters' input while training. Default <c>0.0</c>.</summary>
    [ConfigurationKeyName("lora_dropout")] public double LoraDropout { get; set; }

    /// <summary>Not in the reference. Which Linear layers get adapters: <c>llm</c> (both experts' attention and MLP
    /// projections), <c>llm_und</c>, <c>llm_gen</c>, <c>all_linear</c>, <c>regex:PATTERN</c> or a comma-separated list
    /// of module names/suffixes (PEFT's rules). Default <c>llm</c>.</summary>
    [ConfigurationKeyName("lora_targets")] public string LoraTargets { get; set; } = "llm";

    // Bagel.NET extensions, not in the reference: validation images (issue 10).

    /// <summary>Not in the reference. JSON-lines file of prompts rendered with the EMA weights every
    /// <see cref="ValidationImagesEvery"/> steps and at the end into <c>&lt;results_dir&gt;/validation/step_NNNNNNN.png</c>
    /// (see <c>Bagel.Training.ValidationImages.ValidationPromptFile</c> for the format); empty turns them off. Default empty (off).</summary>
    [ConfigurationKeyName("validation_prompts")] public string ValidationPrompts { get; set; } = "";

    /// <summary>Not in the reference. Render <see cref="ValidationPrompts"/> every this many completed steps (and at the
    /// end of the run); 0 renders at every checkpoint (<see cref="SaveEvery"/>). Default <c>0</c>.</summary>
    [ConfigurationKeyName("validation_images_every")] public int ValidationImagesEvery { get; set; }

    /// <summary>Default of <see cref="ValidationBatches"/>: a few batches per group keep an evaluation short.</summary>
    public const int DefaultValidationBatches = 4;
}
