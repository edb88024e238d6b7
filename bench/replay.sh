#!/usr/bin/env bash
# Replay benchmark: how fast `lifeboat replay` hands a backlog back to an origin, and, in
# the same run, Postfix's own smtp-source into the same kind of sink as the reference.
#
#   USERS users x MESSAGES/USERS diverted copies each (synthetic, a few KB) -> replay ->
#   smtp-sink on loopback (the origin)
#   smtp-source (CONNECTIONS sessions, MESSAGES messages of 10 KB) -> smtp-sink
#
# Replay runs with [replay] connections = CONNECTIONS, max_rate = 5000 and slow_start =
# 3s (from 500/s up), so the ramp-up shows in the progress log lines. Prints both rates and
# their ratio. Not a test: nothing here asserts a time.
#
# usage: bench/replay.sh [MESSAGES] [CONNECTIONS] [USERS]   (as root: smtp-sink)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/sbin:/sbin:$PATH"
MESSAGES=${1:-5000}
CONNECTIONS=${2:-8}
USERS=${3:-16}

[ "$(id -u)" -eq 0 ] || { echo "bench/replay.sh: run as root (smtp-sink)" >&2; exit 1; }
./tests/install-deps.sh
cargo build --release --quiet --bin lifeboat
cargo build --release --quiet -p lifeboat-mailstore --bin lifeboat-store-writer
target=${CARGO_TARGET_DIR:-$PWD/target}/release

work=$(mktemp -d /tmp/lifeboat-replay-bench.XXXXXX)
sink_pid=""
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
origin=$(free_port)

cat > "$work/lifeboat.toml" <<TOML
data_dir = "$work/data"
hostname = "lifeboat.bench"
user = "root"

[[origin]]
name = "main"
address = "smtp://127.0.0.1:$origin"
domains = ["example.test"]

[replay]
connections = $CONNECTIONS
max_rate = 5000
slow_start = "3s"
TOML
export LIFEBOAT_CONFIG=$work/lifeboat.toml
lifeboat=$target/lifeboat

"$lifeboat" outage begin >/dev/null
per_user=$((MESSAGES / USERS))
for u in $(seq "$USERS"); do
    echo bench | "$lifeboat" user add "user$u@example.test" --password-stdin >/dev/null
    "$target/lifeboat-store-writer" "$work/data" "user$u@example.test" 1 "$per_user" diverted >/dev/null
done
"$lifeboat" outage end >/dev/null
total=$((per_user * USERS))
bytes=$(du -sb "$work/data/mail" | cut -f1)
echo "bench: $total diverted copies for $USERS users ($((bytes / total)) bytes each on average)"

smtp-sink -u postfix 127.0.0.1:"$origin" 256 >/dev/null 2>&1 & sink_pid=$!
sleep 0.3
now() { date +%s.%N; }
t0=$(now)
LIFEBOAT_LOG=info "$lifeboat" replay 2>"$work/replay.log"
t1=$(now)
grep "replay progress" "$work/replay.log" | sed 's/^\([^ ]*\).*done=\([0-9]*\).*rate="\([^"]*\)".*/  \1  done \2  (average \3)/' | awk 'NR % 4 == 1' || true
replay_rate=$(python3 -c "print(round($total / ($t1 - $t0), 1))")
"$lifeboat" status | grep -E "state|copies"

t0=$(now)
smtp-source -s "$CONNECTIONS" -m "$total" -l 10240 -f bench@else.test -t user1@example.test 127.0.0.1:"$origin"
t1=$(now)
source_rate=$(python3 -c "print(round($total / ($t1 - $t0), 1))")

echo
echo "replay of $total copies over $CONNECTIONS connections into smtp-sink:"
printf '  lifeboat replay   %8.1f msg/s\n' "$replay_rate"
printf '  smtp-source       %8.1f msg/s   (Postfix'"'"'s load generator, same sink, 10 KB)\n' "$source_rate"
python3 -c "print(f'  ratio             {$replay_rate / $source_rate:8.2f}x   (target: replay >= 1000 msg/s)')"
