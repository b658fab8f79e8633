#!/usr/bin/env bash
# Makes sure ffmpeg and ffprobe are on PATH: installs Debian's ffmpeg when run as root,
# otherwise prints the exact command and fails.
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ffmpeg not found: installing it with apt-get (Debian package 'ffmpeg')..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq ffmpeg >&2
else
  echo "error: ffmpeg is required but not installed. Install it with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ffmpeg" >&2
  exit 2
fi
