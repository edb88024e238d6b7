#!/usr/bin/env bash
# IMAP benchmark: Lifeboat's IMAP server against Dovecot's, on loopback, in one run.
#
#   imap_load (CONCURRENCY clients, one user each, whole sessions back to back:
#   LOGIN, SELECT INBOX, then OPS: LIST "" "*", STATUS INBOX, FETCH 1:* (FLAGS
#   ENVELOPE), FETCH n BODY.PEEK[] x BODIES, STORE n +FLAGS (\Seen), APPEND a small
#   message, UID STORE +FLAGS (\Deleted) on it + EXPUNGE; LOGOUT)  ->  the server
#   under test, whose CPU time (its whole process tree, exited children included) and
#   peak memory imap_load reads from /proc during each run
#
# Both servers get the same users with the same argon2id password hashes (Lifeboat's
# default), and the same MESSAGES synthetic messages per user: Lifeboat's Maildir is
# copied for Dovecot. If Lifeboat does not take APPEND yet, append and expunge are left
# out of the mix for every server (the output says which operations ran). Four
# servers, measured REPEAT times each, alternating:
#   lifeboat         `lifeboat serve` with an [imap] listener (plaintext: loopback)
#   dovecot          Dovecot's imap with its default settings (auth cache off, a new
#                    login process per connection)
#   dovecot-tuned    the same with auth_cache_size = 10M (Dovecot's counterpart of
#                    Lifeboat's login cache) and reused login processes
#   dovecot-cheap    dovecot-tuned with {PLAIN} passwords: no hashing cost at all, the
#                    fair match for Lifeboat's login cache, which spares argon2id after
#                    a user's first login (Dovecot's auth cache still verifies argon2id
#                    on every login)
# Then, on Lifeboat and the default Dovecot:
#   idle    IDLE_CONNECTIONS logged-in connections that SELECTed INBOX sit idle; RSS
#           before and after, per connection (Lifeboat: the serve process; Dovecot: the
#           sum of its `imap` processes, and of its whole process tree)
#   select  SELECT of a mailbox of BIG messages (built with lifeboat-store-writer,
#           fsync skipped with eatmydata when available), median of 7 in one session
#           (Dovecot's first SELECT builds its index and is shown apart)
# Dovecot runs from its own config in a temp dir (the system's dovecot service and
# /etc/dovecot are not touched). Not a test: nothing here asserts a time.
#
# usage: bench/imap.sh [SECONDS] [CONCURRENCY] [MESSAGES] [REPEAT] [IDLE_CONNECTIONS] [BIG] [OPS]
#        (as root; OPS defaults to list,status,fetch,body,store,append,expunge; BIG=0
#        skips select)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/sbin:/sbin:$PATH"

SECS=${1:-10}
CONCURRENCY=${2:-16}
MESSAGES=${3:-20}
REPEAT=${4:-3}
IDLE=${5:-500}
BIG=${6:-100000}
OPS=${7:-list,status,fetch,body,store,append,expunge}
BODIES=${BODIES:-3}
PASSWORD=bench-password

[ "$(id -u)" -eq 0 ] || { echo "bench/imap.sh: run as root (Dovecot drops privileges)" >&2; exit 1; }
if ! command -v dovecot >/dev/null || [ ! -e /usr/lib/dovecot/imap ]; then
    apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null
fi
command -v eatmydata >/dev/null || apt-get install -y -qq --no-install-recommends eatmydata >/dev/null || true
cargo build --release --quiet --bin lifeboat
cargo build --release --quiet -p lifeboat-servers --example imap_load && cargo build --release --quiet -p lifeboat-mailstore --bin lifeboat-store-writer
target=${CARGO_TARGET_DIR:-$PWD/target}/release
lifeboat=$target/lifeboat
load=$target/examples/imap_load
writer=$target/lifeboat-store-writer
nosync=()
command -v eatmydata >/dev/null && nosync=(eatmydata)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # Dovecot's master holds a descriptor per connection

work=$(mktemp -d /tmp/lifeboat-imap-bench.XXXXXX)
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

# ---- one store for Lifeboat, copied as Dovecot's Maildirs ----
lifeboat_port=$(free_port)
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
listen = ["127.0.0.1:$lifeboat_port"]
tls_listen = []
[web]
listen = []
tls_listen = []
[tls]
cert = "$work/tls/cert.pem"
key = "$work/tls/key.pem"
TOML
mkdir -p "$work/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null
: > "$work/passwd"
for n in $(seq "$CONCURRENCY"); do
    echo "$PASSWORD" | "$lifeboat" user add "user$n@example.test" --password-stdin >/dev/null
    "${nosync[@]}" "$writer" "$work/data" "user$n@example.test" 1 "$MESSAGES" >/dev/null
done
if [ "$BIG" -gt 0 ]; then
    echo "$PASSWORD" | "$lifeboat" user add "big@example.test" --password-stdin >/dev/null
    started=$(date +%s)
    "${nosync[@]}" "$writer" "$work/data" "big@example.test" 1 "$BIG" >/dev/null
    echo "bench: stored $BIG messages for big@example.test in $(($(date +%s) - started))s ${nosync[*]:+(with eatmydata)}" >&2
fi
# The same argon2id hashes for Dovecot ({ARGON2ID}$argon2id$...).
python3 - "$work/data/index.sqlite" >> "$work/passwd" <<'PY'
import sqlite3, sys
for address, hash in sqlite3.connect(sys.argv[1]).execute("SELECT address, password_hash FROM users"):
    print(f"{address}:{hash}")
PY
mkdir -p "$work/dovecot/mail"
cp -a "$work/data/mail/example.test" "$work/dovecot/mail/"
chown -R dovecot:dovecot "$work/dovecot/mail"
bytes=$(du -sb "$work/data/mail" | cut -f1)
echo "bench: $CONCURRENCY users x $MESSAGES messages, big@ x $BIG ($((bytes / 1024)) KiB in all), ${SECS}s per run, $REPEAT runs per server" >&2

# The same users with the password in the clear, for dovecot-cheap.
sed "s/:.*/:{PLAIN}$PASSWORD/" "$work/passwd" > "$work/passwd-plain"

# dovecot_config NAME PORT default|tuned|cheap: writes $work/NAME/dovecot.conf
# shellcheck source=bench/lib/dovecot.sh
. bench/lib/dovecot.sh
dovecot_config() {
    local dir=$work/$1 passwd=$work/passwd
    [ "$3" = cheap ] && passwd=$work/passwd-plain
    # Room for the idle measurement.
    dovecot_write_config "$dir" "$2" "$work/dovecot/mail" "$passwd" "$IDLE"
    if [ "$3" != default ]; then
        cat >> "$dir/dovecot.conf" <<CONF
auth_cache_size = 10M
auth_cache_ttl = 15 mins
service imap-login {
  service_count = 0
  process_min_avail = 2
}
CONF
    fi
}

# measure SERVER PORT PID: one run; prints imap_load's line (sessions, commands per
# second and per server CPU-second, the server's peak memory)
measure() {
    local out
    out=$("$load" load "127.0.0.1:$2" "$CONCURRENCY" "$SECS" example.test "$PASSWORD" "$OPS" "$BODIES" "$3")
    echo "bench: $1 $out" >&2
    case "$out" in *" failed=0 "*) ;; *) echo "bench: $1 had failed sessions" >&2 ;; esac
    echo "$out"
}

# Each server's port and the pid of its process tree's root.
servers=(lifeboat dovecot dovecot-tuned dovecot-cheap)
declare -A port pid
port[lifeboat]=$lifeboat_port
"$lifeboat" serve >/dev/null 2>"$work/serve.log" & pids+=($!)
pid[lifeboat]=$!
wait_port "${port[lifeboat]}"
for server in dovecot dovecot-tuned dovecot-cheap; do
    port[$server]=$(free_port)
    kind=${server#dovecot-}
    dovecot_config "$server" "${port[$server]}" "${kind/dovecot/default}"
    dovecot -F -c "$work/$server/dovecot.conf" & pids+=($!)
    pid[$server]=$!
    wait_port "${port[$server]}"
done

# Which operations Lifeboat takes: APPEND and EXPUNGE come out of the mix when not.
case ",$OPS," in
*,append,*)
    probe=$("$load" load "127.0.0.1:$lifeboat_port" 1 1 example.test "$PASSWORD" append,expunge 0 2>&1 || true)
    case "$probe" in
    *" failed=0 "*"ops=append,expunge "*) ;;
    *)
        echo "bench: Lifeboat does not take APPEND/EXPUNGE yet ($(grep -m1 imap_load <<<"$probe" || echo "${probe##*ops=}")); leaving them out" >&2
        OPS=$(tr ',' '\n' <<<"$OPS" | grep -vx -e append -e expunge | paste -sd,)
        ;;
    esac
    ;;
esac
echo "bench: operations per session: LOGIN, SELECT, $OPS (BODY.PEEK[] x $BODIES), LOGOUT" >&2

# Warm up each (page cache, Dovecot's index files, Lifeboat's login cache) once.
for server in "${servers[@]}"; do
    SECS=2 measure "$server" "${port[$server]}" "${pid[$server]}" >/dev/null
done

field() { sed -n "s|.*[ ^]$1=\([^ ]*\).*|\1|p" <<<" $2"; }
# Per server, the runs' sessions/s, commands/s, commands per server CPU-second and peak
# RSS of the server's process tree (KiB), each a space-separated list.
declare -A rates commands per_cpu peak
for round in $(seq "$REPEAT"); do
    for server in "${servers[@]}"; do
        line=$(measure "$server" "${port[$server]}" "${pid[$server]}")
        rates[$server]+="$(field rate "$line") "
        commands[$server]+="$(field commands/s "$line") "
        per_cpu[$server]+="$(field commands_per_cpu_s "$line") "
        peak[$server]+="$(field peak_rss_kb "$line") "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- SELECT of a big mailbox ----
select_line() { # SERVER PORT
    local out
    out=$("$load" select "127.0.0.1:$2" big@example.test "$PASSWORD" 7)
    echo "bench: select $1 $out" >&2
    echo "$out"
}
if [ "$BIG" -gt 0 ]; then
    sel_lb=$(select_line lifeboat "${port[lifeboat]}")
    sel_dc=$(select_line dovecot "${port[dovecot]}")
fi

# ---- idle connections ----
idle_line() { # SERVER PORT PID COMM
    local out
    out=$("$load" idle "127.0.0.1:$2" "$IDLE" "$CONCURRENCY" example.test "$PASSWORD" "$3" "$4" 3)
    echo "bench: idle $1 $out" >&2
    echo "$out"
}
idle_lb=$(idle_line lifeboat "${port[lifeboat]}" "${pid[lifeboat]}" lifeboat)
idle_dc=$(idle_line dovecot "${port[dovecot]}" "${pid[dovecot]}" imap)

echo "operations per session: LOGIN SELECT ${OPS//,/ } LOGOUT; passwords: argon2id (Lifeboat's default) on every server but dovecot-cheap ({PLAIN})"
printf '%-14s %10s %10s %17s %13s  %s\n' server sessions/s commands/s cmds/server-cpu-s peak-rss-MiB "runs (sessions/s)"
for server in "${servers[@]}"; do
    printf '%-14s %10.1f %10.1f %17.1f %13.1f  %s\n' "$server" "$(median <<<"${rates[$server]}")" \
        "$(median <<<"${commands[$server]}")" "$(median <<<"${per_cpu[$server]}")" \
        "$(median <<<"${peak[$server]}" | awk '{print $1 / 1024}')" "${rates[$server]}"
done
for server in "${servers[@]:1}"; do
    awk -v name="$server" -v lb="$(median <<<"${rates[lifeboat]}")" -v other="$(median <<<"${rates[$server]}")" \
        -v lc="$(median <<<"${per_cpu[lifeboat]}")" -v oc="$(median <<<"${per_cpu[$server]}")" 'BEGIN {
        printf "lifeboat / %-13s = %.2fx sessions/s, %.2fx commands per server CPU-second\n", name, lb / other, lc / oc
    }'
done
printf 'idle %s connections, KB per connection: lifeboat rss %s (pss %s); dovecot imap rss %s (pss %s), whole dovecot tree rss %s\n' \
    "$IDLE" "$(field rss_per_conn_kb "$idle_lb")" "$(field pss_per_conn_kb "$idle_lb")" \
    "$(field rss_per_conn_kb "$idle_dc")" "$(field pss_per_conn_kb "$idle_dc")" "$(field tree_rss_per_conn_kb "$idle_dc")"
if [ "$BIG" -gt 0 ]; then
    printf 'SELECT of %s messages, median ms: lifeboat %s; dovecot %s (its first, indexing: %s)\n' \
        "$(field messages "$sel_lb")" "$(field median_ms "$sel_lb")" "$(field median_ms "$sel_dc")" "$(field first_ms "$sel_dc")"
fi
