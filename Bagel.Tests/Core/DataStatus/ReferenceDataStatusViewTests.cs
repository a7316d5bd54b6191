using System.Text.Json.Nodes;
using Bagel.Core.DataStatus;

namespace Bagel.Tests.Core.DataStatus;

public sealed class ReferenceDataStatusViewTests
{
    [Fact]
    public void ViewHasTheReferenceShapePerPositionKind()
    {
        JsonArray view = ReferenceDataStatusView.ToReferenceShape(DataStatusExamples.TwoRanks());

        Assert.Equal(2, view.Count);
        Assert.Equal("[1,0,41]", view[0]!["t2i_pretrain"]!["0"]!.ToJsonString());
        Assert.Equal("[17,5]", view[0]!["unified_edit"]!["1"]!.ToJsonString());
        Assert.Equal(99, view[1]!["vlm_sft"]!["0"]!.GetValue<long>());
    }

    [Fact]
    public void ReferenceShapeImportsWithInferredKinds()
    {
        JsonNode reference = JsonNode.Parse("""
            [ {"edit": {"0": [4, 7]}, "t2i": {"0": [2, 1, 5], "1": [0, 0, 9]}},
              null,
              {"vlm": {"1": 12}} ]
            """)!;

        DataStatusDocument document = ReferenceDataStatusView.FromReferenceShape(reference, numWorkers: 2);

        Assert.Equal(3, document.WorldSize);
        Assert.Equal(SourcePosition.T2I(2, 1, 5), document.Ranks[0].Positions["t2i"][0]);
        Assert.Equal(SourcePosition.Edit(4, 7), document.Ranks[0].Positions["edit"][0]);
        Assert.Empty(document.Ranks[1].Positions);
        Assert.Equal(SourcePosition.Vlm(12), document.Ranks[2].Positions["vlm"][1]);
        // Groups and workers come out in ordinal order; a rank without status becomes an empty object.
        Assert.Equal(reference.ToJsonString().Replace("null", "{}", StringComparison.Ordinal),
            ReferenceDataStatusView.ToReferenceShape(document).ToJsonString());
    }

    [Theory]
    [InlineData("{\"a\": 1}", "list by rank")]
    [InlineData("[{\"g\": {\"0\": [1, 2, 3, 4]}}]", "2 (edit) or 3 (T2I)")]
    [InlineData("[{\"g\": {\"w\": 1}}]", "worker id 'w'")]
    [InlineData("[{\"g\": {\"0\": \"x\"}}]", "rank 0, group 'g', worker 0")]
    public void MalformedReferenceShapesAreRejected(string json, string expected)
    {
        var ex = Assert.Throws<DataStatusFormatException>(() => ReferenceDataStatusView.FromReferenceShape(JsonNode.Parse(json)!, 1));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}
