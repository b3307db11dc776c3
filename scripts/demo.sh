#!/usr/bin/env bash
# The main job: build, start the edge with its embedded demo stream (live/demo, looped from a
# committed fixture), then play it with player-test over RTM (miniSDP/UDP), WHEP and HTTP-FLV,
# printing the staged first-frame report of each. The server keeps running until Ctrl-C when
# DEMO_KEEP=1, so you can point other players (a browser at http://127.0.0.1:8080/play/live/demo) at it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p rtmlive -p player-test
# The demo binds loopback only (it runs in open mode, without tokens); see docs/operations.md
# for a production configuration.
RTMLIVE_LISTEN__MEDIA__BIND=127.0.0.1:8000 RTMLIVE_LISTEN__HTTP__BIND=127.0.0.1:8080 \
RTMLIVE_LISTEN__RTMP__BIND=127.0.0.1:1935 ./target/release/rtmlive &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
secs=${DEMO_SECONDS:-5}
./target/release/player-test --duration "${secs}s" rtm://127.0.0.1:8000/live/demo
./target/release/player-test --duration "${secs}s" http://127.0.0.1:8080/whep/live/demo
./target/release/player-test --duration "${secs}s" http://127.0.0.1:8080/live/demo.flv
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo "server still running (pid $server); Ctrl-C to stop"
  wait $server
fi
