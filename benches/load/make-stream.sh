#!/usr/bin/env bash
# Makes the load benchmark's stream: 20 s of 1280x720 30 fps H.264 (main, no B-frames, 2 s GOP,
# ~1.95 Mbit/s with noise so the encoder cannot undershoot) + 48 kbit/s AAC, as FLV: about
# 2.06 Mbit/s in all, the rate issue 4's target is stated for. The server loops it as live/demo
# (benches/load/run.sh with FIXTURE=...).
#
#   benches/load/make-stream.sh [OUT.flv]     (default /tmp/bench/stream2m.flv)
set -euo pipefail
OUT=${1:-/tmp/bench/stream2m.flv}
mkdir -p "$(dirname "$OUT")"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t 20 -vf "noise=alls=12:allf=t" \
  -c:v libx264 -preset veryfast -profile:v main -bf 0 -g 60 -b:v 1950k -maxrate 2000k -bufsize 1000k \
  -c:a aac -b:a 48k -ar 48000 -f flv "$OUT"
ffprobe -v error -show_entries format=bit_rate,duration -of default=nw=1 "$OUT"
