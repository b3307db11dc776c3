#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine (idempotent).
# - ffmpeg 5.1 (Debian) as broadcaster/origin for H.264; a current static ffmpeg (imageio-ffmpeg,
#   PyPI) for HEVC in FLV/Enhanced RTMP and WHIP.
# - chromium + chromium-driver for the browser (WHEP) test.
# - cmake/nasm for crates that build C (opus, openh264).
set -euo pipefail
need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v nasm >/dev/null 2>&1 || need_apt+=(nasm)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import imageio_ffmpeg' >/dev/null 2>&1; then
  python3 -m pip install -q 'imageio-ffmpeg==0.8.1'
fi
FFMPEG9=$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')
echo "setup: ffmpeg=$(command -v ffmpeg) ffmpeg9=$FFMPEG9 chromium=$(command -v chromium || true)"
