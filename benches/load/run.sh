#!/usr/bin/env bash
# Whole-system load benchmark: rtmlive's fan-out egress (real RTM sessions: miniSDP, ICE-lite,
# DTLS-SRTP, RTCP) per server CPU-second, next to shared/tools/fanout-limit on the same core.
#
#   benches/load/run.sh N [DURATION_S]
#
# 1. Starts the standalone demo server (live/demo) on loopback, pinned to core 0.
# 2. Plays N concurrent RTM sessions with player-test, pinned to core 1 (the player reads every
#    packet, so the matching fanout-limit mode is --rx drain with its reader on core 1).
# 3. Measures the server process's CPU time (utime+stime of all its threads, /proc/PID/stat) over
#    a steady-state window (every session playing) and its egress over the same window
#    (rtmlive_egress_* counters of /metrics when they move; otherwise the sum of player-test's
#    per-session packet and byte rates, each from the session's first RTP packet to its end,
#    times the window). Also prints all packets received / all server CPU of the run.
# 4. Stops the server, then runs fanout-limit --viewers N --seconds 5 --rx drain --rx-core 1 on
#    core 0 and prints the ratio.
#
# Environment: BIN (dir with rtmlive and player-test; default /tmp/bench),
#              FANOUT (fanout-limit binary; default /tmp/fanout-target/release/fanout-limit),
#              OUT (dir for logs and JSON; default /tmp/bench/out),
#              FIXTURE (FLV file the server loops as live/demo instead of its embedded ~0.5 Mbit/s
#                       demo; benches/load/make-stream.sh makes a 2 Mbit/s one).
set -euo pipefail

N=${1:?usage: run.sh VIEWERS [DURATION_S]}
DUR=${2:-20}
BIN=${BIN:-/tmp/bench}
FANOUT=${FANOUT:-/tmp/fanout-target/release/fanout-limit}
OUT=${OUT:-/tmp/bench/out}
FANOUT_PORT=${FANOUT_PORT:-20000}   # yardstick receivers: below the ephemeral range, so no clash
RAMP=${RAMP:-250}               # session starts per second (all N at once overloads the handshakes)
WARM=$(( (N + RAMP - 1) / RAMP + 2 ))   # the window opens 2 s after the last session started ...
WIN=$((DUR - WARM - 1))                 # ... and closes 1 s before the first one ends
mkdir -p "$OUT"
[ "$WIN" -ge 4 ] || { echo "DURATION_S too short (need >= N/RAMP + 8)" >&2; exit 2; }
for b in "$BIN/rtmlive" "$BIN/player-test" "$FANOUT"; do
  [ -x "$b" ] || { echo "missing $b" >&2; exit 2; }
done

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, all threads
cpu0() { awk '$1 == "cpu0" {print $7 + $8, $9}' /proc/stat; }   # core 0: irq+softirq, steal ticks
udp_rcvbuf_errors() { awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ {print $6}' /proc/net/snmp; }
metric() {  # sum of a counter over its labels; empty if absent
  curl -fsS --max-time 2 http://127.0.0.1:8080/metrics 2>/dev/null |
    awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $NF; f = 1} END {if (f) printf "%.0f\n", s}'
}

echo "== $(date -u +%FT%TZ) N=$N fixture=${FIXTURE:-embedded demo} ramp=${RAMP}/s duration=${DUR}s window=${WARM}+${WIN}s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

FIXTURE=${FIXTURE:-}
[ -z "$FIXTURE" ] || [ -r "$FIXTURE" ] || { echo "missing $FIXTURE" >&2; exit 2; }
${FIXTURE:+env RTMLIVE_DEMO__FIXTURE="$FIXTURE"} RTMLIVE_LISTEN__MEDIA__BIND=127.0.0.1:8000 RTMLIVE_LISTEN__HTTP__BIND=127.0.0.1:8080 \
RTMLIVE_LISTEN__RTMP__BIND=127.0.0.1:1935 \
  taskset -c 0 "$BIN/rtmlive" >"$OUT/rtmlive-$N.log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true; wait $SRV 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS --max-time 1 -o /dev/null http://127.0.0.1:8080/healthz && break; sleep 0.2; done
sleep 2   # the demo stream's first GOP

i0=$(cpu_ticks $SRV); sleep 2; i1=$(cpu_ticks $SRV)
IDLE_TICKS=$((i1 - i0))   # over 2 s: the demo source and timers with no viewer

c0=$(cpu_ticks $SRV); t0=$(date +%s.%N); rb0=$(udp_rcvbuf_errors)
taskset -c 1 "$BIN/player-test" --sessions "$N" --concurrency "$N" --ramp "$RAMP" --duration "${DUR}s" \
  --timeout 10s --json --json-out "$OUT/player-$N.json" rtm://127.0.0.1:8000/live/demo >/dev/null 2>"$OUT/player-$N.err" &
PT=$!
sleep "$WARM"
read -r sq0 st0 < <(cpu0); w0=$(cpu_ticks $SRV); wt0=$(date +%s.%N); mp0=$(metric rtmlive_egress_packets_total); mb0=$(metric rtmlive_egress_bytes_total)
sleep "$WIN"
read -r sq1 st1 < <(cpu0); w1=$(cpu_ticks $SRV); wt1=$(date +%s.%N); mp1=$(metric rtmlive_egress_packets_total); mb1=$(metric rtmlive_egress_bytes_total)
PT_RC=0; wait $PT || PT_RC=$?
c1=$(cpu_ticks $SRV); t1=$(date +%s.%N); rb1=$(udp_rcvbuf_errors)
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)
kill $SRV; wait $SRV 2>/dev/null || true; trap - EXIT

sleep 1
read -r fq0 _ < <(cpu0)
"$FANOUT" --viewers "$N" --seconds 5 --rx drain --core 0 --rx-core 1 --base-port "$FANOUT_PORT" --json \
  >"$OUT/fanout-$N.txt" 2>&1
read -r fq1 _ < <(cpu0)
tail -n1 "$OUT/fanout-$N.txt" >"$OUT/fanout-$N.json"
# The server sends runs of equal-size datagrams to one viewer as one UDP GSO send when the kernel
# allows it, so the GSO mode of the yardstick is printed as a second reference.
"$FANOUT" --viewers "$N" --seconds 5 --rx drain --core 0 --rx-core 1 --base-port "$FANOUT_PORT" --gso --json \
  >"$OUT/fanout-gso-$N.txt" 2>&1
tail -n1 "$OUT/fanout-gso-$N.txt" >"$OUT/fanout-gso-$N.json"

python3 - "$OUT/player-$N.json" "$OUT/fanout-$N.json" "$OUT/fanout-gso-$N.json" <<PY
import json, sys
tck = $TCK
rep = json.load(open(sys.argv[1])); fl = json.load(open(sys.argv[2])); fg = json.load(open(sys.argv[3]))
ss = rep["sessions"]; agg = rep["aggregate"]
pkts = sum(s["video_buffer"]["packets_received"] + s["audio_buffer"]["packets_received"] for s in ss)
byts = sum(s["bytes_received"] for s in ss)
run_cpu = ($c1 - $c0) / tck; run_wall = $t1 - $t0
win_cpu = ($w1 - $w0) / tck; win_wall = $wt1 - $wt0
mp = "$mp0" and "$mp1" and (int("$mp1") - int("$mp0")); mb = "$mb0" and "$mb1" and (int("$mb1") - int("$mb0"))
# Steady-state send rate while every session plays: each successful session's packets and bytes
# over its own time from first RTP packet to its end, summed. Only valid when every session
# succeeded (failed ones come and go inside the window); otherwise the whole-run figure counts.
def span(s):
    f = s["stages"].get("first_rtp")
    return (s["duration_ms"] - f) / 1000 if s["ok"] and f is not None and s["duration_ms"] - f > 1000 * $WIN else None
rate_p = sum((s["video_buffer"]["packets_received"] + s["audio_buffer"]["packets_received"]) / span(s) for s in ss if span(s))
rate_b = sum(s["bytes_received"] / span(s) for s in ss if span(s))
if agg["failed"]:
    print(f"WARNING: {agg['failed']} sessions failed: the window estimate covers only the sessions that played throughout")
if mp and mp > 0:
    src, e_pkts, e_bytes, cpu, wall = "server /metrics, steady-state window", mp, mb, win_cpu, win_wall
else:
    src, e_pkts, e_bytes, cpu, wall = ("window: server CPU in the window vs the sessions' summed steady-state rate "
        "(player-test per-session packets and bytes from first RTP to end)"), rate_p * win_wall, rate_b * win_wall, win_cpu, win_wall
print(f"whole run (measured end to end, incl. signalling and DTLS handshakes): "
      f"{pkts/run_cpu:,.0f} pkt per CPU-second, {byts*8/run_cpu/1e6:,.0f} Mbit per CPU-second")
pps_cpu = e_pkts / cpu; bps_cpu = e_bytes * 8 / cpu
fl_cpu = fl["user_s"] + fl["sys_s"]
fl_pps_cpu = fl["packets"] / fl_cpu if fl_cpu > 0 else fl["pps"]
FL_PKT_PER_VIEWER_S = 210  # fanout-limit's 2 Mbit/s stream: 30 fps x 7 packets
print(f"player-test: sessions {agg['sessions']} ok {agg['ok']} failed {agg['failed']}, frames dropped {agg['frames_dropped']}, "
      f"NACKs {agg['nacks_sent']}, retransmits {agg['retransmits_received']}, rc $PT_RC")
print(f"host UDP RcvbufErrors during the player run (datagrams dropped at full receive queues, any process): {$rb1 - $rb0}")
print(f"client-side egress seen: {pkts} packets, {byts*8/1e6:.1f} Mbit over {run_wall:.1f} s "
      f"= {pkts/run_wall:,.0f} pkt/s, {byts*8/run_wall/1e6:.1f} Mbit/s, avg {byts/max(pkts,1):.0f} B/pkt, "
      f"{pkts/run_wall/max(agg['ok'],1):.0f} pkt/s per viewer")
idle = $IDLE_TICKS / tck / 2
print(f"server CPU: idle {100*idle:.1f}% of a core; run {run_cpu:.2f} s over {run_wall:.1f} s ({100*run_cpu/run_wall:.0f}%); "
      f"window {win_cpu:.2f} s over {win_wall:.1f} s ({100*win_cpu/win_wall:.0f}%)")
print(f"egress source: {src}")
# Loopback delivery runs in softirq; on a busy core the kernel defers it to ksoftirqd, and
# with IRQ time accounting it is not charged to the sending process at all. So also count
# core 0's irq+softirq time (which may include other jobs' share) as a bound.
sirq = ($sq1 - $sq0) / tck; steal = ($st1 - $st0) / tck
fsirq = ($fq1 - $fq0) / tck * fl["secs"] / (fl["secs"] + 1)  # tool run includes a 1 s warm-up
print(f"core 0 in the window: irq+softirq {sirq:.2f} s ({100*sirq/wall:.0f}%), steal {steal:.2f} s; "
      f"fanout-limit run: irq+softirq ~{fsirq:.2f} s over {fl['secs']:.1f} s, thread user {fl['user_s']:.2f} s sys {fl['sys_s']:.2f} s")
net = cpu - idle * wall
print(f"SERVER  {pps_cpu:,.0f} pkt per CPU-second, {bps_cpu/1e6:,.0f} Mbit per CPU-second "
      f"(net of idle: {e_pkts/net:,.0f} pkt, {e_bytes*8/net/1e6:,.0f} Mbit); {e_pkts/wall:,.0f} pkt/s sent in the window")
print(f"FANOUT  {fl['pps']:,.0f} pkt/s ({fl_pps_cpu:,.0f} per CPU-second), {fl['gbps']*1000:,.0f} Mbit/s, rx drain, {fl['profile']}, {fl['impl']}")
fg_pps_cpu = fg["packets"] / (fg["user_s"] + fg["sys_s"])
print(f"FANOUT+GSO {fg['pps']:,.0f} pkt/s ({fg_pps_cpu:,.0f} per CPU-second), {fg['gbps']*1000:,.0f} Mbit/s")
print(f"RATIO   {pps_cpu/fl_pps_cpu:.3f} vs fanout-limit rx=drain (packets per CPU-second); {pps_cpu/fg_pps_cpu:.3f} vs rx=drain --gso")
s_pps_sq = e_pkts / (cpu + sirq); f_pps_sq = fl["packets"] / (fl_cpu + fsirq)
print(f"RATIO incl. core-0 softirq: server {s_pps_sq:,.0f} vs fanout-limit {f_pps_sq:,.0f} pkt per CPU-second = {s_pps_sq/f_pps_sq:.3f}")
print(f"RATIO vs fanout-limit wall-clock pkt/s (its thread shares core 0 with other jobs): {pps_cpu/fl['pps']:.3f}")
per_viewer = rate_p / max(sum(1 for s in ss if span(s)), 1)
per_viewer_b = rate_b * 8 / max(sum(1 for s in ss if span(s)), 1)
print(f"this stream: {per_viewer:.0f} pkt/s, {per_viewer_b/1e6:.2f} Mbit/s per viewer -> "
      f"VIEWERS OF THIS STREAM PER CORE {pps_cpu/max(per_viewer,1):,.0f} (by packets), {bps_cpu/max(per_viewer_b,1):,.0f} (by bytes)")
print(f"2 Mbit/s viewers per core: server {pps_cpu/FL_PKT_PER_VIEWER_S:,.0f} (by packets, 210 pkt/s per viewer), "
      f"{bps_cpu/2e6:,.0f} (by bytes); fanout-limit {fl_pps_cpu/FL_PKT_PER_VIEWER_S:,.0f} (by packets)")
print(f"load average after the run: $LOAD_MID")
PY
