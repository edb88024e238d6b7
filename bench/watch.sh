#!/usr/bin/env bash
# Origin watch benchmark: how long Lifeboat, with the default [watch] settings, takes to
# declare an outage after the origin dies, and to end it after the origin returns.
#
#   origin: Postfix's smtp-sink on loopback, killed and restarted by this script
#   lifeboat serve: default [watch] timings (probe every 5 s, retries every 500 ms,
#                   3 failures -> outage, 3 good probes over >= 10 s -> back)
#
# Two ways an outage is noticed, each measured RUNS times:
#   idle      no mail flows: only the periodic probe notices the dead origin
#   deferral  right after the origin dies, a message arrives at the fallback listener
#             (as Postfix hands it over when the origin refuses it): the watch probes
#             at once and the fallback listener waits for the verdict
# Detection: from the kill until `lifeboat status` says outage. Recovery: from the
# restart until it says normal again. Prints medians, min and max. Not a test:
# nothing here asserts a time.
#
# usage: bench/watch.sh [RUNS]   (as root: smtp-sink from Postfix, installed if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/sbin:/sbin:$PATH"
RUNS=${1:-10}

[ "$(id -u)" -eq 0 ] || { echo "bench/watch.sh: run as root (smtp-sink)" >&2; exit 1; }
./tests/install-deps.sh
cargo build --release --quiet --bin lifeboat
lifeboat=$PWD/target/release/lifeboat

work=$(mktemp -d /tmp/lifeboat-watch-bench.XXXXXX)
sink_pid="" serve_pid=""
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
origin=$(free_port) milter=$(free_port) fallback=$(free_port)

cat > "$work/lifeboat.toml" <<TOML
data_dir = "$work/data"
hostname = "lifeboat.bench"
user = "root"

[[origin]]
name = "main"
address = "smtp://127.0.0.1:$origin"
domains = ["example.test"]

[milter]
listen = "inet:127.0.0.1:$milter"

[fallback]
listen = "127.0.0.1:$fallback"

[imap]
listen = []
tls_listen = []

[pop3]
listen = []
tls_listen = []

[web]
listen = []
tls_listen = []
[submission]
listen = []
tls_listen = []
TOML
export LIFEBOAT_CONFIG=$work/lifeboat.toml

start_origin() {
    for _ in $(seq 50); do
        smtp-sink -u postfix 127.0.0.1:"$origin" 64 >/dev/null 2>&1 &
        sink_pid=$!
        sleep 0.1
        kill -0 "$sink_pid" 2>/dev/null && return 0 # port still in TIME_WAIT: retry
    done
    echo "bench: smtp-sink would not start on port $origin" >&2
    exit 1
}
stop_origin() { kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""; }
state() { "$lifeboat" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["origins"][0]["state"])'; }
# wait_until CONDITION: polls the state every 50 ms (at most 120 s).
wait_until() {
    for _ in $(seq 2400); do
        if eval "$1"; then return 0; fi
        sleep 0.05
    done
    echo "bench: timed out waiting for: $1" >&2
    exit 1
}

start_origin
"$lifeboat" serve 2>"$work/serve.log" &
serve_pid=$!
wait_until '[ "$(state)" = normal ] && grep -q "probe succeeded" "$work/serve.log"'

# A message handed to the fallback listener, as Postfix's smtp client would. The
# recipient is not a protected user, so nothing is diverted and every outage ends
# straight in normal.
fallback_delivery() {
    python3 - "$fallback" <<'PY' >/dev/null 2>&1 &
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60) as s:
    s.sendmail("sender@else.test", ["nobody@example.test"],
               b"From: sender@else.test\r\nSubject: bench\r\n\r\nhello\r\n")
PY
}

declare -A detect recover
for mode in idle deferral; do
    detect[$mode]="" recover[$mode]=""
    for run in $(seq "$RUNS"); do
        # Die at a random point of the probe cycle, as a real origin would.
        sleep "$(python3 -c 'import random; print(round(random.uniform(0, 5), 2))')"
        t0=$(now)
        stop_origin
        [ "$mode" = deferral ] && fallback_delivery
        wait_until '[ "$(state)" = outage ]'
        t1=$(now)
        start_origin
        t2=$(now)
        wait_until '[ "$(state)" = normal ]'
        t3=$(now)
        d=$(python3 -c "print(round($t1 - $t0, 2))")
        r=$(python3 -c "print(round($t3 - $t2, 2))")
        detect[$mode]+="$d " recover[$mode]+="$r "
        echo "  $mode run $run: detected in ${d}s, recovered in ${r}s" >&2
    done
done

summary() {
    python3 - "$@" <<'PY'
import statistics, sys
name, values = sys.argv[1], [float(v) for v in sys.argv[2].split()]
print(f"  {name:<28} median {statistics.median(values):5.2f} s   min {min(values):5.2f} s   max {max(values):5.2f} s   ({len(values)} runs)")
PY
}
echo
echo "origin watch with the default [watch] settings:"
summary "detection, idle origin" "${detect[idle]}"
summary "detection, on a deferral" "${detect[deferral]}"
summary "recovery, idle origin" "${recover[idle]}"
summary "recovery, after a deferral" "${recover[deferral]}"
echo "  target: detection <= 5 s"
