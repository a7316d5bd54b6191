using System.Reflection;
using Xunit.Sdk;
using Xunit.v3;

[assembly: TestFramework(typeof(Bagel.Tests.SharedDataTestFramework))]

namespace Bagel.Tests;

/// <summary>
/// Marks a test class or method that needs a file or folder of the external test data (<see cref="SharedData"/>).
/// When it is absent, the tests are left out at discovery instead of each reporting its own skip (three lines each in
/// <c>dotnet test</c>); <see cref="SharedDataSummaryTests"/> reports each absent resource once, with how many tests it
/// kept from running. Tests that call <see cref="SharedData.Require"/> without the attribute still skip one by one.
/// </summary>
/// <param name="relativePath">The path under the shared data folder, as given to <see cref="SharedData.Require"/>.</param>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = true)]
internal sealed class NeedsSharedDataAttribute(string relativePath) : Attribute
{
    public string RelativePath { get; } = relativePath;
}

/// <summary>xunit's framework with discovery that leaves out the tests whose <see cref="NeedsSharedDataAttribute"/> resources are absent.</summary>
public sealed class SharedDataTestFramework : XunitTestFramework
{
    /// <inheritdoc />
    protected override ITestFrameworkDiscoverer CreateDiscoverer(Assembly assembly)
    {
        var inner = (XunitTestFrameworkDiscoverer)base.CreateDiscoverer(assembly);
        return new Discoverer(inner.TestAssembly, inner.TestCollectionFactory);
    }

    private sealed class Discoverer(IXunitTestAssembly assembly, IXunitTestCollectionFactory collections) : XunitTestFrameworkDiscoverer(assembly, collections)
    {
        protected override ValueTask<bool> FindTestsForMethod(IXunitTestMethod testMethod, ITestFrameworkDiscoveryOptions discoveryOptions,
            Func<ITestCase, ValueTask<bool>> discoveryCallback) =>
            SharedDataNeeds.Missing(testMethod.Method, testMethod.TestClass.Class).Count > 0
                ? new ValueTask<bool>(true)
                : base.FindTestsForMethod(testMethod, discoveryOptions, discoveryCallback);
    }
}

/// <summary>Which shared-data resources the tests name and which of them are absent.</summary>
internal static class SharedDataNeeds
{
    /// <summary>The absent resources <paramref name="method"/> (or its class) needs.</summary>
    public static IReadOnlyList<string> Missing(MethodInfo method, Type type) =>
        [.. Needs(method, type).Where(path => !SharedData.Exists(path)).Distinct(StringComparer.Ordinal)];

    /// <summary>Every absent resource with the number of test methods it keeps from running (theories count once).</summary>
    public static IReadOnlyList<(string Resource, int Tests)> MissingInAssembly() =>
        [.. typeof(SharedDataNeeds).Assembly.GetTypes()
            .SelectMany(type => type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(m => m.GetCustomAttributes().OfType<IFactAttribute>().Any())
                .SelectMany(m => Missing(m, type)))
            .GroupBy(resource => resource, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Count()))
            .OrderBy(r => r.Key, StringComparer.Ordinal)];

    private static IEnumerable<string> Needs(MethodInfo method, Type type) =>
        method.GetCustomAttributes<NeedsSharedDataAttribute>().Concat(type.GetCustomAttributes<NeedsSharedDataAttribute>()).Select(a => a.RelativePath);
}
