using System.Text.Json;
using Dloral.Checkpoints;
using Dloral.Pipeline;
using Dloral.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Dloral.Tests.Cli;

/// <summary>
/// The tiny DLoRAL model (golden tiny_sd + checkpoint/model.pkl, and the same converted with <c>dloral convert</c>)
/// upscaling generated clips through the <c>dloral</c> entry point.
/// </summary>
[Collection("DloralEndToEnd")]
public class DloralEndToEndTests(ITestOutputHelper output)
{
    private static string Sd => GoldenData.PathOf("tiny_sd");
    private static string Pkl => GoldenData.PathOf("checkpoint", "model.pkl");

    // The tiny model's frames are far below the reference's 512-px process size: --min-size 64 is the explicit opt-in.
    private static string[] Upscale(string input, string outPath, string model, params string[] extra) =>
        ["upscale", input, "-o", outPath, "--model", model, "--scale", "4", "--min-size", "64", "--progress", "none", "-q", "--threads", "1", .. extra];

    private static byte[][] Frames(string folder) =>
        Directory.EnumerateFiles(folder, "*.png").Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();

    /// <summary>Decodes a PNG to raw RGB bytes with ffmpeg (independent of our media code).</summary>
    private static byte[] Rgb(TestMedia media, string png)
    {
        var raw = media.PathOf(Path.GetFileNameWithoutExtension(png) + Guid.NewGuid().ToString("N")[..6] + ".rgb");
        TestMedia.Ffmpeg("-i", png, "-f", "rawvideo", "-pix_fmt", "rgb24", raw);
        return File.ReadAllBytes(raw);
    }

    [Fact]
    public void Tiny_dloral_upscales_an_8_frame_clip_through_the_cli_folder_and_converted_file_agree()
    {
        using var media = new TestMedia();
        string input = media.PathOf("in.mkv");
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x32:r=30000/1001,rotate=a=0.05*n", "-frames:v", "8", "-c:v", "ffv1", "-pix_fmt", "bgr0", input);

        // (a) the official layout: diffusers folder + model.pkl, to a video: 8 frames, 128x128, fps kept exactly.
        string video = media.PathOf("out.mkv");
        var r = CliRunner.Run(Upscale(input, video, Sd, "--checkpoint", Pkl, "--codec", "ffv1"));
        Assert.True(r.ExitCode == 0, r.ToString());
        var stream = TestMedia.FirstStream(video, "video");
        Assert.Equal(128, stream.GetProperty("width").GetInt32());
        Assert.Equal(128, stream.GetProperty("height").GetInt32());
        Assert.Equal("30000/1001", stream.GetProperty("r_frame_rate").GetString());
        var (_, count, _) = TestMedia.Run("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", video]);
        Assert.Equal("8", count.Trim());

        // PNG folders: deterministic (two runs, same bytes), and every frame written.
        string a = media.PathOf("a/"), b = media.PathOf("b/");
        Assert.Equal(0, CliRunner.Run(Upscale(input, a, Sd, "--checkpoint", Pkl)).ExitCode);
        Assert.Equal(0, CliRunner.Run(Upscale(input, b, Sd, "--checkpoint", Pkl)).ExitCode);
        var fa = Frames(a);
        Assert.Equal(8, fa.Length);
        Assert.Equal(fa, Frames(b));

        // (b) the converted single file gives the same bytes.
        string converted = media.PathOf("tiny-dloral.safetensors");
        var c = CliRunner.Run("convert", "--sd", Sd, "--checkpoint", Pkl, "-o", converted, "--dtype", "float32", "-q");
        Assert.True(c.ExitCode == 0, c.ToString());
        string viaFile = media.PathOf("c/");
        var rf = CliRunner.Run(Upscale(input, viaFile, converted));
        Assert.True(rf.ExitCode == 0, rf.ToString());
        Assert.Equal(fa, Frames(viaFile));

        // Frame 0 is restored by the model, not just bicubic: compare with the bicubic baseline.
        string bic = media.PathOf("bic/");
        Assert.Equal(0, CliRunner.Run("upscale", input, "-o", bic, "--model", "bicubic", "--scale", "4", "--progress", "none", "-q", "--threads", "1").ExitCode);
        var first = Directory.EnumerateFiles(a, "*.png").Order(StringComparer.Ordinal).First();
        var firstBic = Directory.EnumerateFiles(bic, "*.png").Order(StringComparer.Ordinal).First();
        byte[] p = Rgb(media, first), q = Rgb(media, firstBic);
        Assert.Equal(128 * 128 * 3, p.Length);
        double mad = p.Zip(q, (x, y) => Math.Abs(x - y)).Average();
        output.WriteLine($"frame 0: mean |dloral - bicubic| = {mad:F2} levels");
        Assert.True(mad > 2.0, $"frame 0 looks like plain bicubic (mean diff {mad:F2} levels)");
    }

    [Fact]
    public void A_scene_cut_in_the_middle_starts_a_new_window()
    {
        using var media = new TestMedia();
        string input = media.PathOf("cut.mkv");
        // 4 frames of testsrc2, then 4 of a different source: one hard cut before frame 4.
        TestMedia.Ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x32:r=25,rotate=a=0.05*n", "-f", "lavfi", "-i", "mandelbrot=s=32x32:r=25",
            "-filter_complex", "[0:v]trim=end_frame=4,setpts=PTS-STARTPTS[a];[1:v]trim=end_frame=4,setpts=PTS-STARTPTS,format=rgb24[b];[a]format=rgb24[a2];[a2][b]concat=n=2:v=1:a=0[v]",
            "-map", "[v]", "-frames:v", "8", "-c:v", "ffv1", "-pix_fmt", "bgr0", input);
        string outDir = media.PathOf("o/");
        var r = CliRunner.Run(["upscale", input, "-o", outDir, "--model", Sd, "--checkpoint", Pkl, "--scale", "4", "--min-size", "64", "--progress", "none", "--verbose", "--threads", "1"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        output.WriteLine(r.Stderr);
        Assert.Equal(8, Frames(outDir).Length);
        var starts = r.Stderr.Split('\n').Where(l => l.Contains("new temporal window", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, starts.Count);
        Assert.StartsWith("frame 0: new temporal window (clip start)", starts[0], StringComparison.Ordinal);
        Assert.StartsWith("frame 4: new temporal window (scene cut)", starts[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Convert_writes_one_self_describing_file_that_loads_to_the_source_tensors()
    {
        using var media = new TestMedia();
        TorchRuntime.Initialize(1);
        string converted = media.PathOf("m.safetensors");
        DloralModelFile.Convert(Sd, Pkl, converted, ScalarType.Float32);
        Assert.True(DloralModelFile.IsDloralFile(converted));
        using (var f = SafeTensorsFile.Open(converted))
        {
            Assert.Equal("dloral-sd", f.Metadata["format"]);
            foreach (var k in new[] { "unet_config", "vae_config", "text_encoder_config", "scheduler_config", "tokenizer/vocab.json", "tokenizer/merges.txt", "adapter_targets" })
                Assert.True(f.Metadata.ContainsKey(k), k);
            using var doc = JsonDocument.Parse(f.Metadata["adapter_targets"]);
            Assert.Equal(6, doc.RootElement.EnumerateObject().Count());
            Assert.Equal("4", f.Metadata["lora_rank_unet_quality"]);
        }

        using var scope = NewDisposeScope();
        using var fromFile = DloralModelFile.Load(converted);
        using var fromSources = DloralModelSource.LoadBundle(Sd, Pkl, Dloral.Nn.ModelOptions.Default);
        void Same(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, string what)
        {
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
            foreach (var (k, v) in expected) TensorAssert.Equal(v, actual[k], $"{what} {k}");
        }
        Same(fromSources.Model.Unet.state_dict(), fromFile.Model.Unet.state_dict(), "unet");
        Same(fromSources.Model.Vae.state_dict(), fromFile.Model.Vae.state_dict(), "vae");
        Same(fromSources.Model.Cfr.state_dict(), fromFile.Model.Cfr.state_dict(), "cfr");
        Same(fromSources.Prompt.Encoder.state_dict(), fromFile.Prompt.Encoder.state_dict(), "text encoder");
        using (var ckpt = DloralCheckpoint.Load(Pkl))
            foreach (var (k, v) in ckpt.StateDictUnet) TensorAssert.Equal(v, fromFile.Model.Unet.state_dict()[k], $"checkpoint {k}");
        // The stored tokenizer gives the same ids and the same embeddings.
        TensorAssert.Equal(fromSources.Prompt.Encode("a cat, grass"), fromFile.Prompt.Encode("a cat, grass"), "prompt embeddings");

        // bf16 file: half the weight bytes, loads (converted to float32 at load) within bf16 rounding.
        string bf16 = media.PathOf("m16.safetensors");
        DloralModelFile.Convert(Sd, Pkl, bf16, ScalarType.BFloat16);
        Assert.True(new FileInfo(bf16).Length < new FileInfo(converted).Length * 0.7);
        using var fromBf16 = DloralModelFile.Load(bf16);
        var w32 = fromFile.Model.Unet.state_dict();
        foreach (var (k, v) in fromBf16.Model.Unet.state_dict().Where(kv => kv.Value.is_floating_point()))
        {
            Assert.Equal(ScalarType.Float32, v.dtype);
            TensorAssert.Close(w32[k], v, atol: 1e-5, rtol: 1e-2, what: k);
        }
    }

    [Fact]
    public void Convert_and_load_errors_are_clear()
    {
        using var media = new TestMedia();
        // Missing --sd parts.
        string partial = media.PathOf("partial");
        CopyDir(Sd, partial);
        Directory.Delete(Path.Combine(partial, "vae"), recursive: true);
        var r = CliRunner.Run("convert", "--sd", partial, "--checkpoint", Pkl, "-o", media.PathOf("x.safetensors"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("missing vae/config.json", r.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(media.PathOf("x.safetensors")));

        // Missing checkpoint.
        r = CliRunner.Run("convert", "--sd", Sd, "--checkpoint", media.PathOf("nope.pkl"), "-o", media.PathOf("x.safetensors"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("nope.pkl", r.Stderr, StringComparison.Ordinal);

        // Wrong SD version: a UNet whose shapes do not fit the checkpoint (other widths / text width).
        string wrong = media.PathOf("wrong");
        CopyDir(Sd, wrong);
        var cfgPath = Path.Combine(wrong, "unet", "config.json");
        File.WriteAllText(cfgPath, File.ReadAllText(cfgPath).Replace("\"cross_attention_dim\": 32", "\"cross_attention_dim\": 48", StringComparison.Ordinal));
        Assert.Contains("48", File.ReadAllText(cfgPath), StringComparison.Ordinal);
        r = CliRunner.Run("convert", "--sd", wrong, "--checkpoint", Pkl, "-o", media.PathOf("x.safetensors"));
        output.WriteLine(r.Stderr);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("attn2.to_k", r.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(media.PathOf("x.safetensors")));
        Assert.DoesNotContain(Directory.EnumerateFiles(media.Dir), f => f.EndsWith(".tmp", StringComparison.Ordinal));

        // A converted file with a tensor missing: loading names it.
        TorchRuntime.Initialize(1);
        string good = media.PathOf("good.safetensors");
        DloralModelFile.Convert(Sd, Pkl, good, ScalarType.Float32);
        string broken = media.PathOf("broken.safetensors");
        using (var f = SafeTensorsFile.Open(good))
        using (var scope = NewDisposeScope())
        {
            var all = f.LoadAll();
            all.Remove("vae.decoder.conv_out.weight");
            SafeTensorsWriter.Save(broken, all, f.Metadata);
        }
        var e = Assert.Throws<UpscaleOptionsException>(() => DloralModelSource.LoadBundle(broken, null, Dloral.Nn.ModelOptions.Default));
        Assert.Contains("decoder.conv_out.weight", e.Message, StringComparison.Ordinal);
        r = CliRunner.Run(Upscale(media.Video("in.mkv", 32, 32, frames: 2, codec: "ffv1", pixelFormat: "bgr0"), media.PathOf("o/"), broken));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("decoder.conv_out.weight", r.Stderr, StringComparison.Ordinal);

        // A folder without --checkpoint.
        r = CliRunner.Run(Upscale(media.PathOf("in.mkv"), media.PathOf("o2/"), Sd));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--checkpoint", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Models_lists_converted_files_in_the_user_folder()
    {
        using var media = new TestMedia();
        TorchRuntime.Initialize(1);
        string dir = Directory.CreateDirectory(media.PathOf("models")).FullName;
        DloralModelFile.Convert(Sd, Pkl, Path.Combine(dir, "tiny-dloral.safetensors"), ScalarType.BFloat16);
        var catalog = new ModelCatalog(shippedDirs: [], userDir: dir);
        var entry = Assert.Single(catalog.Entries, e => e.Name == "tiny-dloral");
        Assert.True(entry.Loadable);
        Assert.Equal(ModelOrigin.User, entry.Origin);
        // The name resolves to the DLoRAL upscaler with the pipeline options.
        using var upscaler = DloralModelSource.TryCreate("tiny-dloral", new DloralVideoOptions { MinimumProcessSide = 64 }, catalog);
        Assert.IsType<DloralUpscaler>(upscaler);
        Assert.Null(DloralModelSource.TryCreate("bicubic", new DloralVideoOptions(), catalog));
    }

    private static void CopyDir(string from, string to)
    {
        foreach (var d in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, d)));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(f, Path.Combine(to, Path.GetRelativePath(from, f)));
    }
}
