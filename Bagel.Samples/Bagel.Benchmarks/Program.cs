using Bagel.Benchmarks;

// Each subcommand is one entry; hidden ones are helpers a benchmark starts in a child process.
var commands = new Dictionary<string, (string Help, bool Hidden, Func<string[], int> Run)>(StringComparer.Ordinal)
{
    ["safetensors"] = ("Streaming write, lazy-open memory growth and sequential-load throughput of a 2 GB safetensors file. " +
                       "Options: --folder DIR (default: a new folder under /tmp), --tensors N (512), --tensor-mb M (4), --keep.",
                       false, SafeTensorsBenchmark.Run),
    ["model"] = ("Packed Qwen2 MoT backbone (hidden 896, MoT) forward+backward on CPU: seconds, tokens/s, peak RSS, MFU; packed vs " +
                 "dense-mask attention at 2k and 4k tokens; activation checkpointing on vs off. Options: --tokens N (4096), --layers L (4), --repeats R (2).",
                 false, ModelBenchmark.Run),
    [ModelBenchmark.StepProbeCommand] = ("(internal) time one forward+backward of the backbone in a fresh process.", true, ModelBenchmark.RunStepProbe),
    [ModelBenchmark.AttentionProbeCommand] = ("(internal) time one attention variant in a fresh process.", true, ModelBenchmark.RunAttentionProbe),
    ["data"] = ("Samples/s and tokens/s of decode + transform + pack per source kind with 1 and 2 workers, on the example data and on " +
                "1024x1024 JPEGs; SkiaSharp vs PIL decode rates; peak RSS after 1,000 and 10,000 samples. Options: --samples N (400), " +
                "--large-samples N (48), --large-count N (100), --rss-samples N (10000), --tokenizer DIR, --folder DIR, --keep, --no-python.",
                false, DataBenchmark.Run),
    [DataBenchmark.MemoryCommand] = ("(internal) read the mixed example data, printing RSS after 1,000 and N samples.", true, DataBenchmark.RunMemory),
    ["train"] = ("Training loop on CPU: (memory) the tiny composite trained N steps on the example data, peak RSS at step 100 and at " +
                 "the end, growth vs 5%; (throughput) the composite at hidden 896 (4 MoT layers, full vocabulary): step time split into data " +
                 "wait, forward+backward and optimizer step (clip, AdamW, EMA, zero_grad), tokens/s, MFU, per-tensor vs flat buffers with libtorch's operations vs the fused pass (the default); " +
                 "(build) RSS while building the flat AdamW and fused EMA vs the per-tensor ones at hidden 896; (optimizer) per-tensor " +
                 "AdamW/EMA vs one flat buffer. Options: --steps N (2000), --rss-at N (100), --measure-steps N (3), --tokens N (1024), --layers L (4), " +
                 "--parts memory,build,throughput,optimizer, --per-tensor (the memory part with TorchSharp's AdamW), --tokenizer DIR (or BAGEL_TOKENIZER).",
                 false, TrainBenchmark.Run),
    [TrainBenchmark.MemoryCommand] = ("(internal) train the tiny composite, printing RSS.", true, TrainBenchmark.RunMemory),
    [TrainBenchmark.ThroughputCommand] = ("(internal) train the small composite a few steps, printing the step split.", true, TrainBenchmark.RunThroughput),
    [TrainBenchmark.BuildCommand] = ("(internal) build AdamW and the EMA at hidden 896, printing RSS.", true, TrainBenchmark.RunBuild),
    [TrainBenchmark.OptimizerCommand] = ("(internal) per-tensor vs flat optimizer updates.", true, TrainBenchmark.RunOptimizer),
    [FoldBenchmark.Command] = ("(internal) the optimizer step alone, folded vs separate, against copy_ bandwidth.", true, FoldBenchmark.Run),
    ["memory"] = ("Peak training memory per parameter and per token for fp32, bf16 mixed precision and bf16 + activation checkpointing: " +
                  "the hidden-896 MoT composite (small SigLIP, tiny VAE) trained 2 steps per mode in a fresh process. Options: --layers L (2), " +
                  "--tokens N (1024), --vocab V (32768; 151665 for Qwen2.5), --modes fp32,bf16,bf16-ckpt.",
                  false, MemoryBenchmark.Run),
    [MemoryBenchmark.ProbeCommand] = ("(internal) train the composite 2 steps in one precision mode, printing memory figures.", true, MemoryBenchmark.RunProbe),
    ["lora"] = ("Peak memory of one LoRA training step vs one full fine-tuning step (AdamW, EMA) of the composite at Qwen2.5-0.5B widths " +
                "(hidden 896, 14/2 heads, intermediate 4864, MoT, small SigLIP, tiny VAE) on one synthetic pack, in fp32 and bf16 mixed precision " +
                "(LoRA: bf16 base, float32 master adapters), each mode in a fresh process: peak RSS, tracked tensor bytes, the ratios. Options: " +
                "--layers L (24), --vocab V (32768), --tokens N (1024), --rank R (16), --alpha A (32), --targets T (llm), " +
                "--modes full,lora,full-bf16,lora-bf16, --checkpointing.",
                false, LoraBenchmark.Run),
    [LoraBenchmark.StepCommand] = ("(internal) two training steps in one mode, printing memory.", true, LoraBenchmark.RunStep),
    ["distributed"] = ("Data-parallel over Open MPI (2 ranks through mpirun): all-reduce of 1, 25 and 100 MB float32 buffers vs a plain memory copy " +
                       "(time ratio), and the tiny preset's step time on 2 ranks vs 1 process. Options: --repeats R (5), --steps N (30).",
                       false, DistributedBenchmark.Run),
    ["sharding"] = ("Per-rank memory of the sharding modes (Open MPI): the composite at hidden 896 (MoT) trained 2 fp32 steps on 1 rank and on 2 " +
                    "ranks with NO_SHARD, OPTIMIZER_SHARD and SHARD_GRAD_OP; each rank prints its peak RSS and held state bytes. Options: " +
                    "--layers L (2), --vocab V (32768), --tokens N (512).",
                    false, ShardingBenchmark.Run),
    [ShardingBenchmark.StepCommand] = ("(internal) one rank of the sharding memory run.", true, ShardingBenchmark.RunStep),
    [DistributedBenchmark.AllReduceCommand] = ("(internal) one MPI rank of the all-reduce timing.", true, DistributedBenchmark.RunAllReduce),
    [DistributedBenchmark.StepCommand] = ("(internal) one rank of the tiny preset step timing.", true, DistributedBenchmark.RunStep),
    ["vlm"] = ("VLM answering on CPU: greedy decoding tokens/s with the KV cache vs recomputing the sequence per token (ratio). " +
               "Options: --tokens N (64), --hidden H (512), --layers L (4), --image PX (224), --question N (32).",
               false, VlmDecodeBenchmark.Run),
    ["generate"] = ("Text-to-image seconds per image on CPU (a small random MoT BAGEL, 256x256, 25 timesteps, the reference's guidance) with " +
                    "and without the prefix KV cache, for a short and a long prompt. Options: --size PX (256), --steps N (25), --hidden H (512), " +
                    "--layers L (4), --prompt-tokens N (32), --long-prompt-tokens N (256), --repeats R (1).",
                    false, GenerateBenchmark.Run),
    [SafeTensorsBenchmark.ProbeCommand] = ("(internal) open a file and read one tensor, printing RSS.", true, SafeTensorsBenchmark.RunProbe),
};

if (args.Length == 0 || !commands.TryGetValue(args[0], out var command))
{
    Console.Error.WriteLine("usage: Bagel.Benchmarks <subcommand> [options]");
    foreach ((string name, (string help, bool hidden, _)) in commands)
        if (!hidden) Console.Error.WriteLine($"  {name,-14} {help}");
    return args.Length == 0 ? 0 : 2;
}
return command.Run(args[1..]);
