namespace Bagel.Data.Example;

/// <summary>A named colour of the example pictures.</summary>
internal sealed record ExampleColor(string Name, byte R, byte G, byte B);

/// <summary>A spot in a 3×3 grid, with the phrases that describe it.</summary>
internal sealed record ExamplePlace(string Name, double X, double Y, string Where, string To);

/// <summary>
/// One picture's content: a single coloured shape on a plain background. Simple enough that a tiny model can learn
/// the caption-to-picture mapping, varied enough (6 shapes × 8 colours × 9 places × 2 sizes × backgrounds) that it
/// has to read the caption.
/// </summary>
internal sealed record ExampleScene(string Shape, ExampleColor Color, ExampleColor Background, ExamplePlace Place, bool Large, int Width, int Height)
{
    public static IReadOnlyList<string> Shapes { get; } = ["circle", "square", "triangle", "diamond", "cross", "ring"];

    public static IReadOnlyList<ExampleColor> Colors { get; } =
    [
        new("red", 220, 40, 40), new("green", 40, 170, 60), new("blue", 40, 80, 220), new("yellow", 240, 210, 40),
        new("purple", 140, 60, 180), new("orange", 245, 140, 30), new("white", 245, 245, 245), new("black", 20, 20, 20),
    ];

    public static IReadOnlyList<ExamplePlace> Places { get; } =
    [
        new("top left", 0.25, 0.25, "in the top left", "to the top left"), new("top", 0.5, 0.25, "at the top", "to the top"),
        new("top right", 0.75, 0.25, "in the top right", "to the top right"), new("left", 0.25, 0.5, "on the left", "to the left"),
        new("center", 0.5, 0.5, "in the center", "to the center"), new("right", 0.75, 0.5, "on the right", "to the right"),
        new("bottom left", 0.25, 0.75, "in the bottom left", "to the bottom left"), new("bottom", 0.5, 0.75, "at the bottom", "to the bottom"),
        new("bottom right", 0.75, 0.75, "in the bottom right", "to the bottom right"),
    ];

    public string SizeWord => Large ? "large" : "small";

    /// <summary>Draws a scene of the given size range.</summary>
    public static ExampleScene Random(ref ExampleRandom random, int minSide, int maxSide)
    {
        int width = random.Between(minSide, maxSide), height = random.Between(minSide, maxSide);
        var color = random.Pick(Colors);
        return new ExampleScene(random.Pick(Shapes), color, OtherColor(ref random, color), random.Pick(Places), random.Below(2) == 1, width, height);
    }

    /// <summary>The short caption of the T2I <c>captions</c> column.</summary>
    public string ShortCaption => $"a {Color.Name} {Shape} on a {Background.Name} background";

    /// <summary>The long caption: the same content with size and place.</summary>
    public string LongCaption => $"A {SizeWord} {Color.Name} {Shape} {Place.Where} of the picture, on a plain {Background.Name} background.";

    /// <summary>Applies one random edit; returns the new scene and one or two wordings of the instruction.</summary>
    public (ExampleScene Scene, IReadOnlyList<string> Wordings) RandomEdit(ref ExampleRandom random)
    {
        string[] wordings;
        ExampleScene next;
        switch (random.Below(5))
        {
            case 0:
            {
                var color = OtherColor(ref random, Color, Background);
                next = this with { Color = color };
                wordings = [$"make the {Shape} {color.Name}", $"turn the {Shape} {color.Name}", $"paint the {Shape} {color.Name}"];
                break;
            }
            case 1:
            {
                var background = OtherColor(ref random, Background, Color);
                next = this with { Background = background };
                wordings = [$"change the background to {background.Name}", $"make the background {background.Name}"];
                break;
            }
            case 2:
            {
                var place = Places[(Places.ToList().IndexOf(Place) + 1 + random.Below(Places.Count - 1)) % Places.Count];
                next = this with { Place = place };
                wordings = [$"move the {Shape} {place.To}", $"put the {Shape} {place.Where}"];
                break;
            }
            case 3:
            {
                string shape = Shapes[(Shapes.ToList().IndexOf(Shape) + 1 + random.Below(Shapes.Count - 1)) % Shapes.Count];
                next = this with { Shape = shape };
                wordings = [$"turn the {Shape} into a {shape}", $"replace the {Shape} with a {shape}"];
                break;
            }
            default:
                next = this with { Large = !Large };
                wordings = Large ? [$"make the {Shape} smaller", $"shrink the {Shape}"] : [$"make the {Shape} bigger", $"enlarge the {Shape}"];
                break;
        }
        // One or two alternative wordings, as in SEED-Data-Edit (the reference picks one at random per use).
        int first = random.Below(wordings.Length);
        if (random.Below(2) == 0) return (next, [wordings[first]]);
        return (next, [wordings[first], wordings[(first + 1 + random.Below(wordings.Length - 1)) % wordings.Length]]);
    }

    /// <summary>The number of question kinds <see cref="Question"/> knows.</summary>
    public const int QuestionKinds = 6;

    /// <summary>A question about the picture and its answer, by kind (0 .. <see cref="QuestionKinds"/> - 1).</summary>
    public (string Question, string Answer) Question(int kind) => kind switch
    {
        0 => ("What shape is in the picture?", $"A {Color.Name} {Shape}."),
        1 => ($"What colour is the {Shape}?", $"It is {Color.Name}."),
        2 => ("What colour is the background?", $"The background is {Background.Name}."),
        3 => ($"Where is the {Shape}?", $"It is {Place.Where} of the picture."),
        4 => ($"Is the {Shape} large or small?", $"It is {SizeWord}."),
        _ => ("Describe the picture.", LongCaption),
    };

    private static ExampleColor OtherColor(ref ExampleRandom random, params ExampleColor[] avoid)
    {
        var choices = Colors.Where(c => !avoid.Contains(c)).ToList();
        return choices[random.Below(choices.Count)];
    }
}
