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
                 "wait, forward+backward and optimizer step (clip, AdamW, EMA, zero_grad), tokens/s, MFU; (optimizer) per-tensor AdamW/EMA vs " +
                 "one flat buffer. Options: --steps N (2000), --rss-at N (100), --measure-steps N (3), --tokens N (1024), --layers L (4), " +
                 "--parts memory,throughput,optimizer, --flat (the memory part with FlatBufferAdamW), --tokenizer DIR (or BAGEL_TOKENIZER).",
                 false, TrainBenchmark.Run),
    [TrainBenchmark.MemoryCommand] = ("(internal) train the tiny composite, printing RSS.", true, TrainBenchmark.RunMemory),
    [TrainBenchmark.ThroughputCommand] = ("(internal) train the small composite a few steps, printing the step split.", true, TrainBenchmark.RunThroughput),
    [TrainBenchmark.OptimizerCommand] = ("(internal) per-tensor vs flat optimizer updates.", true, TrainBenchmark.RunOptimizer),
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
