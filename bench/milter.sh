#!/usr/bin/env bash
# Milter benchmark: Postfix throughput with and without Lifeboat, in one run.
#
#   smtp-source (SESSIONS sessions, MESSAGES messages of SIZE bytes, one protected
#   recipient each) -> a private Postfix on loopback -> an smtp-sink playing the origin.
#
# Four modes, each measured REPEAT times, alternating, on fresh instances:
#   none     Postfix without a milter (the reference)
#   noop     a milter that negotiates the same stages as Lifeboat's and does nothing
#            (milter/examples/noop_milter.rs): the cost of the milter protocol itself,
#            so the ceiling for Lifeboat
#   journal  Lifeboat's milter, origin normal: a durable journal copy per message, and
#            Postfix still delivers to the origin
#   divert   Lifeboat's milter, origin in outage: a durable diverted copy per message,
#            recipient removed (Postfix discards the message)
# The time is from the first connection until Postfix's queue is empty (everything
# delivered to the sink, or discarded). Prints msg/s per mode, the ratios to `none` (of the
# medians, and the median of each round's ratio), and Lifeboat's modes as a ratio of `noop`;
# on stderr, each run's rate and the milter's CPU time per message.
# Not a test: nothing here asserts a time.
#
# usage: bench/milter.sh [MESSAGES] [SESSIONS] [SIZE] [REPEAT]   (as root)
#        BENCH_MODES="none noop" bench/milter.sh …   runs only the modes named
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/sbin:/sbin:$PATH"

MESSAGES=${1:-2000}
SESSIONS=${2:-20}
SIZE=${3:-10240}
REPEAT=${4:-3}

[ "$(id -u)" -eq 0 ] || { echo "bench/milter.sh: run as root (Postfix instances)" >&2; exit 1; }
./tests/install-deps.sh
cargo build --release --quiet --bin lifeboat
cargo build --release --quiet -p lifeboat-milter --example noop_milter
target=${CARGO_TARGET_DIR:-$PWD/target}
lifeboat=$target/release/lifeboat
noop_milter=$target/release/examples/noop_milter
instance=$PWD/tests/support/postfix-instance

work=$(mktemp -d /tmp/lifeboat-bench.XXXXXX)
chmod 755 "$work" # Postfix's daemons run as `postfix` and must reach their directories
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for dir in "$work"/run-*/postfix; do [ -d "$dir" ] && "$instance" "$dir" stop >/dev/null 2>&1 || true; done
    [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# run MODE N: one measurement; writes messages per second to $work/run-N/rate.
# (Not called as $(run …): the daemons it starts would hold the substitution's pipe.)
run() {
    local mode=$1 dir=$work/run-$2
    mkdir -p "$dir" && chmod 755 "$dir"
    local smtpd origin outside milter fallback
    smtpd=$(free_port); origin=$(free_port); outside=$(free_port); milter=$(free_port); fallback=$(free_port)
    smtp-sink -u postfix 127.0.0.1:"$origin" 256 >/dev/null 2>&1 & pids+=($!)
    smtp-sink -u postfix 127.0.0.1:"$outside" 256 >/dev/null 2>&1 & pids+=($!)
    local args=(--smtpd-port "$smtpd" --origin 127.0.0.1:"$origin" --outside 127.0.0.1:"$outside")
    local milter_pid=""
    if [ "$mode" = noop ]; then
        "$noop_milter" 127.0.0.1:"$milter" & pids+=($!)
        milter_pid=$!
        wait_port "$milter"
        args+=(--milter inet:127.0.0.1:"$milter")
    elif [ "$mode" != none ]; then
        cat > "$dir/lifeboat.toml" <<TOML
data_dir = "$dir/data"
hostname = "lifeboat.bench"
user = "root"
[log]
level = "${BENCH_LOG_LEVEL:-warn}"
[[origin]]
name = "main"
address = "smtp://127.0.0.1:$origin"
domains = ["example.test"]
[milter]
listen = "inet:127.0.0.1:$milter"
[fallback]
listen = "127.0.0.1:$fallback"
[pop3]
listen = []
tls_listen = []
[imap]
listen = []
tls_listen = []
[web]
listen = []
tls_listen = []
[submission]
listen = []
tls_listen = []
TOML
        export LIFEBOAT_CONFIG=$dir/lifeboat.toml
        echo bench | "$lifeboat" user add alice@example.test --password-stdin >/dev/null
        [ "$mode" = divert ] && "$lifeboat" outage begin >/dev/null
        "$lifeboat" serve >/dev/null 2>"$dir/serve.log" & pids+=($!)
        milter_pid=$!
        wait_port "$milter"
        args+=(--milter inet:127.0.0.1:"$milter" --fallback 127.0.0.1:"$fallback")
    fi
    "$instance" "$dir/postfix" start "${args[@]}" >/dev/null
    local start end
    start=$(date +%s.%N)
    smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f sender@else.test -t alice@example.test 127.0.0.1:"$smtpd"
    while [ -n "$(postqueue -c "$dir/postfix/etc" -j 2>/dev/null)" ]; do sleep 0.05; done
    end=$(date +%s.%N)
    if [ "$mode" = journal ] || [ "$mode" = divert ]; then
        # Journal copies are written in the background after the milter answered: wait
        # (up to a minute) for the last one, and say how far behind Postfix it was.
        local stored drained
        for _ in $(seq 600); do
            stored=$("$lifeboat" status --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["origins"][0]["copies"]; print(c["journal"]+c["diverted_pending"])')
            [ "$stored" -ge "$MESSAGES" ] && break
            sleep 0.1
        done
        drained=$(date +%s.%N)
        python3 -c "print(f'bench: $mode: every copy stored {$drained - $end:.2f} s after Postfix finished')" >&2
        [ "$stored" -eq "$MESSAGES" ] || { echo "bench: $mode stored $stored of $MESSAGES" >&2; exit 1; }
    fi
    if [ -n "$milter_pid" ]; then
        # CPU seconds the milter used (utime + stime, in clock ticks), per message,
        # background writes included.
        python3 -c "import os; f=open('/proc/$milter_pid/stat').read().rsplit(')',1)[1].split(); hz=os.sysconf('SC_CLK_TCK'); u=int(f[11])/hz; k=int(f[12])/hz; t=u+k; print(f'bench: $mode: milter used {t:.2f} s CPU ({u:.2f} user, {k:.2f} kernel), {1000*t/$MESSAGES:.2f} ms per message')" >&2
    fi
    "$instance" "$dir/postfix" stop >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    pids=()
    python3 -c "print(f'{$MESSAGES / ($end - $start):.1f}')" > "$dir/rate"
}

modes=${BENCH_MODES:-none noop journal divert}
declare -A results
n=0
for round in $(seq "$REPEAT"); do
    for mode in $modes; do
        n=$((n + 1))
        run "$mode" "$n"
        rate=$(cat "$work/run-$n/rate")
        results[$mode]+="$rate "
        echo "round $round: $mode $rate msg/s" >&2
    done
done

summary=()
for mode in $modes; do summary+=("$mode=${results[$mode]}"); done
python3 - "$MESSAGES" "$SESSIONS" "$SIZE" "${summary[@]}" <<'PY'
import statistics, sys
messages, sessions, size = sys.argv[1:4]
runs = {mode: [float(x) for x in rates.split()] for mode, rates in (a.split("=", 1) for a in sys.argv[4:])}
targets = {"journal": 0.85, "divert": 0.80}
labels = {"none": "no milter"}
count = len(next(iter(runs.values())))
print(f"milter benchmark: {messages} messages of {size} bytes, {sessions} sessions (median of {count} runs)")
base = statistics.median(runs["none"]) if "none" in runs else None
noop = statistics.median(runs["noop"]) if "noop" in runs else None
for mode, rates in runs.items():
    rate = statistics.median(rates)
    line = f"  {labels.get(mode, mode):<10} {rate:8.1f} msg/s"
    if base:
        line += f"  {rate / base:5.2f}x"
        # Each round's ratio to that round's `none`, then the median: less swayed by
        # load that comes and goes between rounds on a shared machine.
        per_round = statistics.median(r / n for r, n in zip(rates, runs["none"]))
        line += f"  (per round {per_round:4.2f}x)"
    if noop and mode not in ("none", "noop"):
        line += f"  ({rate / noop:4.2f}x of noop)"
    if base and mode in targets:
        met = "met" if rate / base >= targets[mode] else "MISSED"
        line += f"  (target >= {targets[mode]:.2f}x: {met})"
    print(line)
PY
