namespace Bagel.Training.Schedules;

/// <summary>Thrown when saved scheduler state does not fit the scheduler it is loaded into.</summary>
public sealed class SchedulerStateException(string message) : Exception(message);
