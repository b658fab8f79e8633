#!/usr/bin/env bash
# Quick start: builds dloral (Release), makes a small sample clip with ffmpeg's test sources
# (testsrc2 video + a sine audio track, under samples/, not committed) and upscales it x4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-ffmpeg.sh
if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET 10 SDK is required (https://learn.microsoft.com/dotnet/core/install/linux-debian)" >&2
  exit 2
fi
echo "building dloral (Release)..." >&2
dotnet build src/Dloral.Cli/Dloral.Cli.csproj -c Release -nologo -v quiet -clp:ErrorsOnly
mkdir -p samples
if [ ! -f samples/sample.mp4 ]; then
  echo "making samples/sample.mp4 (3 s, 320x180, 29.97 fps, with audio)..." >&2
  ffmpeg -hide_banner -nostdin -v error -y \
    -f lavfi -i "testsrc2=s=320x180:r=30000/1001" -f lavfi -i "sine=f=440:r=48000" -t 3 \
    -map 0:v -map 1:a -c:v libx264 -preset veryfast -crf 26 -pix_fmt yuv420p -c:a aac -b:a 64k -shortest \
    samples/sample.mp4
fi
dloral=src/Dloral.Cli/bin/Release/net10.0/linux-x64/dloral
"$dloral" upscale samples/sample.mp4 -o samples/sample_x4.mp4 --overwrite
"$dloral" info samples/sample_x4.mp4
