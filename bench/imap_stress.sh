#!/usr/bin/env bash
# IMAP concurrency stress, Lifeboat and Dovecot 2.3 side by side, with the same workload.
#
#   tests/imap_stress.py: CLIENTS clients log in and out as USERS users (often a user
#   another client is logged in as, so a mailbox has several sessions at once), each
#   running a random mix of SELECT/EXAMINE, FETCH, STORE, EXPUNGE, APPEND, COPY, MOVE,
#   NOOP, IDLE, STATUS and SEARCH, and handing new mail to the server now and then;
#   every answer is checked against a model of each mailbox (see the script's header).
#
# Both servers get the same users with the same argon2id password hashes and the same
# MESSAGES synthetic messages per user (Lifeboat's Maildirs, imported into Dovecot's
# store with `doveadm import`). Dovecot stores mail as sdbox by default (DOVECOT_MAIL):
# its Maildir store loses track of messages under this load (its log says "Duplicate
# file entry" and "Expunged message reappeared, giving a new UID", and the checker sees
# a message expunged that nobody removed and a UID it never made), which is Dovecot's
# own known Maildir race, not what this compares. New mail
# goes to Lifeboat through its fallback listener (the origin is put in outage, as
# Postfix would hand it over) and to Dovecot over LMTP. Both runs use one seed (SEED,
# random by default), so the clients make the same choices as far as the servers'
# answers let them. Dovecot runs from its own config in a temp dir (bench/lib/dovecot.sh,
# as bench/imap.sh does). Not a test: the exit status is 0 whatever was found; the
# summary prints operations, errors (tagged NO/BAD) by kind and violations by kind for
# each server, and each run's report with the first violations above it.
#
# usage: bench/imap_stress.sh [SECONDS] [CLIENTS] [USERS]   (as root)
#        env: MESSAGES (10), SEED, SERIAL=1 (one command at a time), DOVECOT_MAIL
#        (sdbox or maildir), SERVERS
#        ("lifeboat dovecot"), BENCH_KEEP=1 (keep the temp dir and the server logs)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/sbin:/sbin:$PATH"

SECS=${1:-30}
CLIENTS=${2:-10}
USERS=${3:-20}
MESSAGES=${MESSAGES:-10}
DOVECOT_MAIL=${DOVECOT_MAIL:-sdbox}
SEED=${SEED:-$((RANDOM * 32768 + RANDOM + 1))}
SERVERS=${SERVERS:-lifeboat dovecot}
PASSWORD=bench-password

[ "$(id -u)" -eq 0 ] || { echo "bench/imap_stress.sh: run as root (Dovecot drops privileges)" >&2; exit 1; }
for package in dovecot-imapd dovecot-lmtpd; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
        apt-get install -y -qq --no-install-recommends "$package" >/dev/null
done
cargo build --release --quiet --bin lifeboat
cargo build --release --quiet -p lifeboat-mailstore --bin lifeboat-store-writer
target=${CARGO_TARGET_DIR:-$PWD/target}/release
lifeboat=$target/lifeboat
writer=$target/lifeboat-store-writer

work=$(mktemp -d /tmp/lifeboat-imap-stress.XXXXXX)
chmod 755 "$work" # Dovecot's processes run as dovecot/dovenull and must reach their files
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# CPU seconds of a process, its threads and the children it reaped (Dovecot's imap
# processes end with their sessions and are reaped by the master).
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat"; }

# ---- one store for Lifeboat, copied as Dovecot's Maildirs ----
lifeboat_port=$(free_port)
fallback_port=$(free_port)
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
listen = "127.0.0.1:$fallback_port"
[imap]
listen = ["127.0.0.1:$lifeboat_port"]
tls_listen = []
[tls]
cert = "$work/tls/cert.pem"
key = "$work/tls/key.pem"
TOML
mkdir -p "$work/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null
users=()
for n in $(seq "$USERS"); do
    echo "$PASSWORD" | "$lifeboat" user add "user$n@example.test" --password-stdin >/dev/null
    "$writer" "$work/data" "user$n@example.test" 1 "$MESSAGES" >/dev/null
    users+=(--user "user$n@example.test:$PASSWORD")
done
python3 - "$work/data/index.sqlite" > "$work/passwd" <<'PY'
import sqlite3, sys
for address, hash in sqlite3.connect(sys.argv[1]).execute("SELECT address, password_hash FROM users"):
    print(f"{address}:{hash}")
PY
mkdir -p "$work/dovecot/mail" "$work/dovecot/seed"
cp -a "$work/data/mail/example.test" "$work/dovecot/seed/"
chown -R dovecot:dovecot "$work/dovecot/mail" "$work/dovecot/seed"

# shellcheck source=bench/lib/dovecot.sh
. bench/lib/dovecot.sh
dovecot_port=$(free_port)
lmtp_port=$(free_port)
dovecot_write_config "$work/dovecot" "$dovecot_port" "$work/dovecot/mail" "$work/passwd" "$CLIENTS" "$lmtp_port"
sed -i "s#^mail_location = maildir:#mail_location = $DOVECOT_MAIL:#" "$work/dovecot/dovecot.conf"

echo "bench: $CLIENTS clients over $USERS users x $MESSAGES messages, ${SECS}s per server, seed $SEED${SERIAL:+ (serial)}, Dovecot with $DOVECOT_MAIL" >&2

# run SERVER PORT DELIVER PID: one checker run; the report goes to $work/SERVER.txt/json
run() {
    local before after status=0
    before=$(cpu_seconds "$4")
    python3 tests/imap_stress.py --label "$1" --port "$2" --deliver "$3" --seed "$SEED" \
        --clients "$CLIENTS" --seconds "$SECS" ${SERIAL:+--serial} "${users[@]}" \
        --json "$work/$1.json" > "$work/$1.txt" 2>&1 || status=$?
    after=$(cpu_seconds "$4")
    awk -v a="$after" -v b="$before" 'BEGIN {print a - b}' > "$work/$1.cpu"
    [ "$status" -le 1 ] || { echo "bench: the checker could not run against $1:" >&2; cat "$work/$1.txt" >&2; }
    cat "$work/$1.txt"
    echo
}

for server in $SERVERS; do
    case $server in
    lifeboat)
        "$lifeboat" serve >/dev/null 2>"$work/serve.log" & pids+=($!)
        lifeboat_pid=$!
        wait_port "$lifeboat_port"
        wait_port "$fallback_port"
        # The fallback listener stores mail only while the origin is in outage.
        "$lifeboat" outage begin >/dev/null
        run lifeboat "$lifeboat_port" "smtp:127.0.0.1:$fallback_port" "$lifeboat_pid"
        errors=$(grep -c ERROR "$work/serve.log" || true)
        echo "bench: lifeboat's log has $errors ERROR lines; the most frequent:" >&2
        grep ERROR "$work/serve.log" | sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' | cut -c1-160 |
            sort | uniq -c | sort -rn | head -5 >&2 || true
        ;;
    dovecot)
        dovecot -F -c "$work/dovecot/dovecot.conf" & pids+=($!)
        dovecot_pid=$!
        wait_port "$dovecot_port"
        wait_port "$lmtp_port"
        for n in $(seq "$USERS"); do
            doveadm -c "$work/dovecot/dovecot.conf" import -u "user$n@example.test" \
                "maildir:$work/dovecot/seed/example.test/user$n" "" all
        done
        run dovecot "$dovecot_port" "lmtp:127.0.0.1:$lmtp_port" "$dovecot_pid"
        ;;
    *) echo "bench: unknown server $server" >&2; exit 2 ;;
    esac
done

# ---- side by side ----
python3 - "$work" $SERVERS <<'PY'
import json, sys
work, servers = sys.argv[1], sys.argv[2:]
reports = {}
for s in servers:
    try:
        reports[s] = json.load(open(f"{work}/{s}.json"))
        reports[s]["cpu"] = float(open(f"{work}/{s}.cpu").read())
    except (OSError, ValueError):
        print(f"(no report from {s})")
servers = [s for s in servers if s in reports]
if not servers:
    sys.exit(0)
width = 16
print(f"== IMAP stress, side by side (seed {reports[servers[0]]['seed']})")
def row(name, values):
    print(f"{name:<34}" + "".join(f"{v:>{width}}" for v in values))
row("", servers)
row("seconds", [r["seconds"] for r in reports.values()])
row("sessions", [r["sessions"] for r in reports.values()])
row("operations", [r["operations"] for r in reports.values()])
row("operations/s", [f"{r['operations'] / max(r['seconds'], 0.001):.0f}" for r in reports.values()])
row("server CPU seconds", [f"{r['cpu']:.1f}" for r in reports.values()])
row("operations per server CPU-second", [f"{r['operations'] / max(r['cpu'], 0.001):.0f}" for r in reports.values()])
row("deliveries", [r["deliveries"] for r in reports.values()])
row("errors (tagged NO/BAD)", [r["errors"] for r in reports.values()])
row("  of which allowed (RFC 2180)", [r["errors_allowed"] for r in reports.values()])
row("violations", [r["violations"] for r in reports.values()])
kinds = sorted({k for r in reports.values() for k in r["violations_by_kind"]})
if kinds:
    print("violations by kind:")
    for k in kinds:
        row("  " + k[:32], [r["violations_by_kind"].get(k, 0) for r in reports.values()])
kinds = sorted({k for r in reports.values() for k in r["errors_by_kind"]})
if kinds:
    print("errors by kind:")
    for k in kinds:
        print("  " + k)
        row("", [r["errors_by_kind"].get(k, 0) for r in reports.values()])
PY
