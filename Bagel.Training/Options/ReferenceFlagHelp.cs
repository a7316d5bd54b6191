using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.Extensions.Configuration;

namespace Bagel.Training.Options;

/// <summary>
/// The <c>--help</c> text of every flag of <see cref="ReferenceCommandLine"/>: what it means (the reference's help
/// texts, told in our words, plus how Bagel.NET treats it) and its default, read from the option classes.
/// </summary>
public static class ReferenceFlagHelp
{
    private static readonly Dictionary<string, string> Descriptions = new(StringComparer.Ordinal)
    {
        // Model (ModelArguments)
        ["model_path"] = "Folder of a released BAGEL model: its LLM and ViT configs, tokenizer and ae.safetensors (read with --finetune_from_hf).",
        ["llm_path"] = "Folder of the Qwen2 language model to start from (config, tokenizer, weights).",
        ["llm_qk_norm"] = "Normalise queries and keys with RMSNorm in every LLM attention layer.",
        ["tie_word_embeddings"] = "Share one matrix between the input embedding and lm_head (true is refused here).",
        ["layer_module"] = "LLM decoder layer: Qwen2DecoderLayer (dense), Qwen2MoEDecoderLayer or Qwen2MoTDecoderLayer (separate generation experts).",
        ["vae_path"] = "FLUX VAE weights (safetensors).",
        ["vit_path"] = "Folder of the SigLIP NaViT vision encoder (config and weights).",
        ["max_latent_size"] = "Largest side of the VAE latent grid, in latent patches; bounds the generated image size (the released model needs 64).",
        ["latent_patch_size"] = "Side of one latent patch in latent pixels (only 2 is supported).",
        ["vit_patch_size"] = "Side of one ViT patch in image pixels.",
        ["vit_max_num_patch_per_side"] = "Most ViT patches along an image side; larger understanding images are scaled down.",
        ["connector_act"] = "Activation inside the MLP that maps ViT features into the LLM (only gelu_pytorch_tanh).",
        ["interpolate_pos"] = "Interpolate the position embeddings of the generation latents instead of indexing them.",
        ["vit_select_layer"] = "Which ViT layer's output feeds the LLM, counted from the end (-2: drop the last layer).",
        ["vit_rope"] = "Use 2D rotary position embedding in the ViT (true is refused here).",
        ["text_cond_dropout_prob"] = "Chance of dropping the text condition of a generation sample (for classifier-free guidance).",
        ["vae_cond_dropout_prob"] = "Chance of dropping a clean-latent (VAE) image condition.",
        ["vit_cond_dropout_prob"] = "Chance of dropping a ViT image condition.",
        // Data (DataArguments)
        ["dataset_config_file"] = "YAML file of the training mix: which data groups and datasets, and their weights.",
        ["dataset_info_file"] = "Our extension: the dataset registry file (YAML or JSON; group, dataset, paths and counts); empty means dataset_info.yaml beside --dataset_config_file.",
        ["prefetch_factor"] = "Packed batches each data worker prepares ahead.",
        ["num_workers"] = "Data worker count (the prefix --num_worker works too).",
        ["max_num_tokens_per_sample"] = "Samples with more tokens than this are skipped.",
        ["max_num_tokens"] = "Hard limit on the tokens of one packed batch.",
        ["prefer_buffer_before"] = "While a batch holds fewer tokens than this, samples waiting in the overflow buffer go first.",
        ["max_buffer_size"] = "Most samples kept in the packer's overflow buffer.",
        ["data_seed"] = "Seed of the data order (the same on every rank).",
        // Training (TrainingArguments)
        ["visual_gen"] = "Train image generation (VAE latents, MSE loss); false for VLM-only.",
        ["visual_und"] = "Train image understanding (ViT tokens); false for T2I-only.",
        ["results_dir"] = "Folder for log.txt, metrics.jsonl and tensorboard/.",
        ["checkpoint_dir"] = "Folder of the checkpoints, one subfolder per saved step.",
        ["wandb_project"] = "W&B project name (accepted; W&B is not called, TensorBoard files are written).",
        ["wandb_name"] = "W&B run name.",
        ["wandb_runid"] = "W&B run id, appended to the run name.",
        ["wandb_resume"] = "W&B resume mode.",
        ["wandb_offline"] = "Run W&B offline.",
        ["global_seed"] = "Base seed of the random generators (each rank adds its rank).",
        ["auto_resume"] = "Resume from the newest complete checkpoint in --checkpoint_dir when there is one, else from --resume_from.",
        ["resume_from"] = "Checkpoint or released model folder to start from; unset trains from scratch.",
        ["resume_model_only"] = "Take only the weights from --resume_from; optimizer, schedule, data position and step start fresh.",
        ["finetune_from_ema"] = "With --resume_model_only, take the weights from the EMA file.",
        ["finetune_from_hf"] = "Fine-tune a released model: configs, tokenizer and VAE from --model_path, weights from --resume_from.",
        ["log_every"] = "Log the step line and metrics every this many steps.",
        ["save_every"] = "Write a checkpoint every this many steps (and at the end).",
        ["total_steps"] = "Optimizer steps to train in all.",
        ["warmup_steps"] = "Steps of linear learning-rate warm-up.",
        ["lr_scheduler"] = "Learning-rate schedule after warm-up: constant or cosine.",
        ["lr"] = "Peak learning rate.",
        ["min_lr"] = "Learning rate the cosine schedule ends at.",
        ["beta1"] = "AdamW first-moment decay.",
        ["beta2"] = "AdamW second-moment decay.",
        ["eps"] = "AdamW epsilon.",
        ["ema"] = "Decay of the EMA copy of the weights, updated after every step.",
        ["max_grad_norm"] = "Clip the global gradient norm to this.",
        ["timestep_shift"] = "Shift of the flow-matching noise level distribution (above 1 favours noisier steps).",
        ["mse_weight"] = "Weight of the image (MSE) loss in the total.",
        ["ce_weight"] = "Weight of the text (cross-entropy) loss in the total.",
        ["ce_loss_reweighting"] = "Weight text tokens by their samples' loss weights instead of plainly averaging them.",
        ["expected_num_tokens"] = "Tokens a packed batch aims for.",
        ["gradient_accumulation_steps"] = "Micro-batches summed into one optimizer step.",
        ["peak_device_tflops"] = "Peak TFLOP/s of one device for the MFU figure; 0 looks the GPU up by name (no MFU is shown when unknown, as on CPU).",
        ["num_replicate"] = "FSDP hybrid-shard replica count (here the replicas follow from the world size and num_shard: must be 1).",
        ["num_shard"] = "Ranks per shard group of HYBRID_SHARD and _HYBRID_SHARD_ZERO2 (divides the world size; at least the world size: one group).",
        ["sharding_strategy"] = "What is sharded over the ranks: NO_SHARD (plain data parallel), FULL_SHARD (parameters per decoder layer, gradients, AdamW state, EMA), HYBRID_SHARD (the same within num_shard groups; one process: nothing), OPTIMIZER_SHARD (AdamW state and EMA), SHARD_GRAD_OP or _HYBRID_SHARD_ZERO2 (and gradients).",
        ["backward_prefetch"] = "FSDP backward prefetch, BACKWARD_PRE or BACKWARD_POST (no effect in one process).",
        ["cpu_offload"] = "Keep the sharded master weights and optimizer state in host memory (CPU runs: where they are already; CUDA: not built yet).",
        ["freeze_llm"] = "Do not train the language model.",
        ["freeze_vit"] = "Do not train the ViT.",
        ["freeze_vae"] = "Do not train the VAE (it is never optimised anyway).",
        ["freeze_und"] = "Do not train the understanding path (embeddings, ViT, understanding experts); lm_head still trains.",
        ["copy_init_moe"] = "Start every generation expert as a copy of its understanding twin.",
        ["use_flex"] = "Reference: packed flex attention. Accepted; attention here is always exact over the packed sequence.",
        ["validation_config_file"] = "Our extension: mix YAML of a held-out validation set over the same registry; empty turns validation off.",
        ["special_token_loss"] = "Our extension: also train the <|im_end|> of a text that is followed by an image to generate to predict <|vision_start|> (the reference sets this per plan item; its shipped datasets leave it off).",
        ["precision"] = "Our extension: bf16 (bf16 forward/backward over float32 master weights, AdamW state and EMA, as the reference's FSDP mixed precision), fp32, or auto (bf16 on CUDA, fp32 on the CPU). See docs/precision.md.",
        ["validate_every"] = "Our extension: evaluate the validation set every this many steps and at the end; 0 means at every checkpoint.",
        ["validation_batches"] = "Our extension: packed batches taken per validation group.",
        ["lora_rank"] = "Our extension: rank of LoRA adapters on the frozen base; 0 trains the full model (checkpoints then hold only the adapters, in PEFT's layout).",
        ["lora_alpha"] = "Our extension: LoRA scale numerator; adapters are scaled by lora_alpha/lora_rank.",
        ["lora_dropout"] = "Our extension: dropout on the LoRA adapters' input while training.",
        ["lora_targets"] = "Our extension: Linear layers to adapt: llm, llm_und, llm_gen, all_linear, regex:PATTERN or a comma list of module names (PEFT's suffix rule).",
        ["validation_prompts"] = "Our extension: JSON-lines file of prompts ({\"prompt\": ...}), edits ({\"edit\": ..., \"image\": ...}) and questions ({\"question\": ..., \"image\": ...}) rendered and answered (greedy, at most 64 steps) with the EMA weights into <results_dir>/validation/step_NNNNNNN.png, step_NNNNNNN_answers.txt and TensorBoard; empty turns it off.",
        ["validation_images_every"] = "Our extension: render --validation_prompts every this many steps and at the end; 0 means at every checkpoint.",
    };

    /// <summary>The meaning of <paramref name="flag"/> (snake_case), or null for an unknown flag.</summary>
    public static string? Describe(string flag) => Descriptions.GetValueOrDefault(flag);

    /// <summary>Every flag's default as text (bools as true/false, unset as <c>none</c>, empty as <c>""</c>).</summary>
    public static IReadOnlyDictionary<string, string> Defaults() =>
        new object[] { new ModelOptions(), new DataOptions(), new TrainingOptions() }
            .SelectMany(o => o.GetType().GetProperties().Select(p => (Key: p.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name, Value: p.GetValue(o))))
            .Where(p => p.Key is not null)
            .ToDictionary(p => p.Key!, p => Text(p.Value), StringComparer.Ordinal);

    /// <summary>The flag list of <c>--help</c>: one entry per flag, in name order, with its default and meaning.</summary>
    public static string Format()
    {
        IReadOnlyDictionary<string, string> defaults = Defaults();
        var text = new StringBuilder();
        foreach (string flag in ReferenceCommandLine.FlagNames.Order(StringComparer.Ordinal))
        {
            text.Append("  --").Append(flag).Append("  (default: ").Append(defaults.GetValueOrDefault(flag, "none")).Append(")\n");
            text.Append("      ").Append(Describe(flag) ?? "(no description)").Append('\n');
        }
        return text.ToString();
    }

    private static string Text(object? value) => value switch
    {
        null => "none",
        bool b => b ? "true" : "false",
        string { Length: 0 } => "\"\"",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "none",
    };
}
