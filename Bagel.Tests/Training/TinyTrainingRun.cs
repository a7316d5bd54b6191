using Bagel.Core.Randomness;
using Bagel.Training.Checkpoints;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training;

/// <summary>
/// A tiny model with dropout (so the global RNG matters), AdamW, a warm-up schedule, EMA and a NaN guard, trained on
/// batches derived from the step index: the model-independent half of a training loop, for resume tests.
/// </summary>
internal sealed class TinyTrainingRun : IDisposable
{
    public TinyTrainingRun(long initSeed = 3)
    {
        torch.manual_seed(initSeed);
        Model = NewModel();
        Model.train();
        Optimizer = AdamWFactory.Create(Model, new AdamWOptions { LearningRate = 1e-2 });
        Scheduler = new LearningRateScheduler(Optimizer, new CosineWithWarmupSchedule(2, 8, 1e-2, 1e-4));
        Ema = EmaModel.Create(Model, NewModel, decay: 0.9);
        Streams = new RandomStreams(seed: 17);
        Guard = new NonFiniteStepGuard(3);
        Stepper = new OptimizerStepper(Optimizer, Scheduler, Ema, Guard, maxGradNorm: 0.5);
        Components = new TrainingComponents(Model, Optimizer, Scheduler, Ema, Streams, Guard);
    }

    public torch.nn.Module Model { get; }
    public AdamW Optimizer { get; }
    public LearningRateScheduler Scheduler { get; }
    public EmaModel Ema { get; }
    public RandomStreams Streams { get; }
    public NonFiniteStepGuard Guard { get; }
    public OptimizerStepper Stepper { get; }
    public TrainingComponents Components { get; }
    public List<double> Losses { get; } = [];

    private static torch.nn.Module NewModel() =>
        Sequential(("fc1", Linear(4, 16)), ("act", GELU()), ("drop", Dropout(0.25)), ("fc2", Linear(16, 2)));

    /// <summary>Trains steps [from, to); a step in <paramref name="nanSteps"/> gets a NaN loss.</summary>
    public void Train(long from, long to, params long[] nanSteps)
    {
        for (long step = from; step < to; step++)
        {
            using var scope = torch.NewDisposeScope();
            var generator = new torch.Generator((ulong)(1000 + step));
            torch.Tensor x = torch.randn([6, 4], generator: generator), y = torch.randn([6, 2], generator: generator);
            // A per-step draw from a named stream, as the loop's timestep sampling would make.
            x = x * (1.0 + Streams.For("noise").NextUniform());
            torch.Tensor loss = functional.mse_loss(((torch.nn.Module<torch.Tensor, torch.Tensor>)Model).forward(x), y);
            if (nanSteps.Contains(step)) loss = loss * double.NaN;
            loss.backward();
            double value = loss.item<float>();
            Losses.Add(value);
            Stepper.Step(step, value);
        }
    }

    public void Dispose()
    {
        Ema.Dispose();
        Streams.Dispose();
        Optimizer.Dispose();
        Model.Dispose();
    }
}
