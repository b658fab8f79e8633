namespace Dloral.Media;

/// <summary>
/// One decoded frame: interleaved RGB, 8 bits per component (RGB24) or 16 bits little-endian (RGB48LE).
/// Row stride is exactly Width × BytesPerPixel (no padding).
/// </summary>
public sealed class VideoFrame
{
    public VideoFrame(int width, int height, int depth, byte[] data, long index, double? timestamp = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"frame size {width}x{height}");
        if (depth is not (8 or 16)) throw new ArgumentOutOfRangeException(nameof(depth), $"depth {depth} (8 or 16)");
        long expected = (long)width * height * 3 * (depth / 8);
        ArgumentNullException.ThrowIfNull(data);
        if (data.LongLength != expected)
            throw new ArgumentException($"frame data has {data.LongLength} bytes, {width}x{height} RGB{depth * 3} needs {expected}", nameof(data));
        Width = width;
        Height = height;
        Depth = depth;
        Data = data;
        Index = index;
        Timestamp = timestamp;
    }

    public int Width { get; }
    public int Height { get; }
    /// <summary>Bits per component: 8 (RGB24) or 16 (RGB48LE).</summary>
    public int Depth { get; }
    /// <summary>Interleaved RGB pixels, row-major, top row first.</summary>
    public byte[] Data { get; }
    /// <summary>0-based position in the output sequence.</summary>
    public long Index { get; }
    /// <summary>Presentation time in seconds from the start of what was read (null when unknown).</summary>
    public double? Timestamp { get; }

    public int BytesPerPixel => 3 * (Depth / 8);
    public int Stride => Width * BytesPerPixel;

    public static long ByteCount(int width, int height, int depth) => (long)width * height * 3 * (depth / 8);

    /// <summary>Component value at (x, y, channel), scaled to [0, 1].</summary>
    public float Sample(int x, int y, int channel)
    {
        int i = (y * Width + x) * 3 + channel;
        return Depth == 8 ? Data[i] / 255f : BitConverter.ToUInt16(Data, i * 2) / 65535f;
    }
}
