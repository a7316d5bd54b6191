using Bagel.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

// Self-check: loads the native backend through Bagel.Core and runs a forward/backward/AdamW step.
// (Unfinished: the training issue replaces this with the Bagel.Train CLI.)
TorchRuntime.EnsureLoaded();
using var scope = NewDisposeScope();
manual_seed(0);
var x = randn(64, 32);
var w = new TorchSharp.Modules.Parameter(randn(32, 8));
var optimizer = optim.AdamW([w], lr: 1e-2);
double first = 0, last = 0;
for (int step = 0; step < 20; step++)
{
    using var stepScope = NewDisposeScope();
    optimizer.zero_grad();
    var loss = x.matmul(w).pow(2).mean();
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item<float>();
    last = loss.item<float>();
}
var bf16 = x.to(ScalarType.BFloat16).to(ScalarType.Float32);
Console.WriteLine($"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch CPU OK; threads {get_num_threads()}");
Console.WriteLine($"self-check: loss {first:F4} -> {last:F4} after 20 AdamW steps; bf16 round-trip max error {(bf16 - x).abs().max().item<float>():E2}");
return last < first ? 0 : 1;
