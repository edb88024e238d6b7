#!/usr/bin/env bash
# Web portal benchmark: `lifeboat serve` with a loopback [web] listener, one user whose
# INBOX holds MESSAGES messages (100 000 by default) plus one 1 MB HTML message, driven
# by web/examples/web_load.rs:
#   1. one client alone: the message list (page 1 and page 1000 of the INBOX), the
#      opened 1 MB HTML message (its page, then its sanitised body): median and p99;
#   2. serve's RSS per stored session (1000 more logins) and per open connection;
#   3. SESSIONS logged-in sessions (50) at once, each on its own keep-alive connection,
#      list pages for SECONDS, then read pages for SECONDS: pages/s, serve's CPU
#      seconds and pages per server CPU-second, latency under load.
# Times are taken by the client on loopback. Targets: list p99 < 50 ms, read p99 <
# 100 ms. Not a test: nothing asserts a time.
#
# usage: bench/web.sh [MESSAGES] [SESSIONS] [SECONDS]   (as root: serve binds as root)
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${1:-100000}
SESSIONS=${2:-50}
SECS=${3:-10}
PASSWORD=bench-password-1

[ "$(id -u)" -eq 0 ] || { echo "bench/web.sh: run as root" >&2; exit 1; }
cargo build --release --quiet --bin lifeboat
cargo build --release --quiet -p lifeboat-web --example web_load
target=${CARGO_TARGET_DIR:-$PWD/target}/release
lifeboat=$target/lifeboat
load=$target/examples/web_load

work=$(mktemp -d /tmp/lifeboat-web-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

web_port=$(free_port)
export LIFEBOAT_CONFIG=$work/lifeboat.toml
cat > "$LIFEBOAT_CONFIG" <<TOML
data_dir = "$work/data"
hostname = "lifeboat.bench"
user = "root"
[log]
level = "warn"
[[origin]]
name = "main"
address = "smtp://127.0.0.1:9"
domains = ["example.test"]
[milter]
listen = "inet:127.0.0.1:$(free_port)"
[fallback]
listen = "127.0.0.1:$(free_port)"
[imap]
listen = []
tls_listen = []
[pop3]
listen = []
tls_listen = []
[web]
listen = ["127.0.0.1:$web_port"]
tls_listen = []
[submission]
listen = []
tls_listen = []
TOML
echo "$PASSWORD" | "$lifeboat" user add big@example.test --password-stdin >/dev/null
started=$(date +%s)
"$load" prepare "$work/data" big@example.test "$MESSAGES"
echo "bench: stored $MESSAGES messages and a 1 MB HTML one in $(($(date +%s) - started)) s" >&2
inbox=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT m.id FROM mailboxes m JOIN users u ON u.id=m.user_id WHERE u.address='big@example.test' AND m.name='INBOX'\").fetchone()[0])" "$work/data/index.sqlite")
uid=$((MESSAGES + 1))

"$lifeboat" serve >/dev/null 2>"$work/serve.log" & pids+=($!)
serve=$!
wait_port "$web_port" || { cat "$work/serve.log" >&2; exit 1; }
echo "bench: serve pid $serve, $SESSIONS sessions, ${SECS}s under load; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$load" run "127.0.0.1:$web_port" big@example.test "$PASSWORD" "$inbox" "$uid" "$SESSIONS" "$SECS" "$serve"
