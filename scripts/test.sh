#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the real tools the tests drive (ffmpeg,
# Chromium), then runs every test of every crate. Under CI=true, tests that need those tools
# must run; they fail rather than skip when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RTMLIVE_FFMPEG9="$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')"
cargo test --workspace --release --all-targets --locked 2>&1
# The fuzz targets live in their own workspace (sanitizer flags stay out of the main build);
# they must at least compile against the current code (a check, no code generation: about a
# minute cold, seconds warm).
(cd fuzz && cargo check --bins --locked 2>&1)
