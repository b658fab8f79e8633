namespace Dloral.Media;

/// <summary>What an output path means: a video file (.mp4/.mkv/.mov), a folder of PNG frames, or one image (.png/.jpg).</summary>
public enum OutputKind
{
    Video,
    ImageFolder,
    Image,
}
