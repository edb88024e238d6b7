#!/usr/bin/env bash
# POP3 benchmark: Lifeboat's POP3 server against Dovecot's, on loopback, in one run.
#
#   pop3_load (CONCURRENCY clients, one user each, whole sessions back to back:
#   USER, PASS, STAT, LIST, UIDL, RETR x RETR, QUIT)  ->  the server under test
#
# Both servers get the same users with the same argon2id password hashes (Lifeboat's
# default), and the same MESSAGES synthetic messages per user: Lifeboat's Maildir is
# copied for Dovecot. Three servers, measured REPEAT times each, alternating:
#   lifeboat         `lifeboat serve` with a [pop3] listener (plaintext: loopback)
#   dovecot          Dovecot's pop3 with its default settings (auth cache off, a new
#                    login process per connection)
#   dovecot-tuned    the same with auth_cache_size = 10M (Dovecot's counterpart of
#                    Lifeboat's login cache) and reused login processes
# Dovecot runs from its own config in a temp dir (the system's dovecot service and
# /etc/dovecot are not touched). Prints sessions/s per server (median) and the ratios.
# Not a test: nothing here asserts a time.
#
# usage: bench/pop3.sh [SECONDS] [CONCURRENCY] [MESSAGES] [RETR] [REPEAT]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/sbin:/sbin:$PATH"

SECS=${1:-10}
CONCURRENCY=${2:-16}
MESSAGES=${3:-20}
RETR=${4:-3}
REPEAT=${5:-3}
PASSWORD=bench-password

[ "$(id -u)" -eq 0 ] || { echo "bench/pop3.sh: run as root (Dovecot drops privileges)" >&2; exit 1; }
if ! command -v dovecot >/dev/null || [ ! -e /usr/lib/dovecot/pop3 ]; then
    apt-get install -y -qq --no-install-recommends dovecot-pop3d >/dev/null
fi
cargo build --release --quiet --bin lifeboat
cargo build --release --quiet -p lifeboat-mailstore --example pop3_load --bin lifeboat-store-writer
target=${CARGO_TARGET_DIR:-$PWD/target}/release
lifeboat=$target/lifeboat
load=$target/examples/pop3_load
writer=$target/lifeboat-store-writer

work=$(mktemp -d /tmp/lifeboat-pop3-bench.XXXXXX)
chmod 755 "$work" # Dovecot's processes run as dovecot/dovenull and must reach their files
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# ---- one store for Lifeboat, copied as Dovecot's Maildirs ----
lifeboat_port=$(free_port)
export LIFEBOAT_CONFIG=$work/lifeboat.toml
cat > "$LIFEBOAT_CONFIG" <<TOML
data_dir = "$work/data"
hostname = "lifeboat.bench"
user = "root"
[[origin]]
name = "main"
address = "smtp://127.0.0.1:9"
domains = ["example.test"]
[milter]
listen = "inet:127.0.0.1:$(free_port)"
[fallback]
listen = "127.0.0.1:$(free_port)"
[pop3]
listen = ["127.0.0.1:$lifeboat_port"]
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
    "$writer" "$work/data" "user$n@example.test" 1 "$MESSAGES" >/dev/null
done
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
echo "bench: $CONCURRENCY users x $MESSAGES messages ($((bytes / 1024)) KiB in all), sessions retrieve $RETR each, ${SECS}s per run, $REPEAT runs per server" >&2

# dovecot_config NAME PORT TUNED: writes $work/NAME/dovecot.conf
dovecot_config() {
    local dir=$work/$1
    mkdir -p "$dir/run" "$dir/state"
    cat > "$dir/dovecot.conf" <<CONF
protocols = pop3
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:$work/dovecot/mail/%d/%n
pop3_uidl_format = %08Xv%08Xu
passdb {
  driver = passwd-file
  args = $work/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$work/dovecot/mail/%d/%n
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $2
  }
  inet_listener pop3s {
    port = 0
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
    if [ "$3" = tuned ]; then
        cat >> "$dir/dovecot.conf" <<CONF
auth_cache_size = 10M
auth_cache_ttl = 15 mins
service pop3-login {
  service_count = 0
  process_min_avail = 2
}
CONF
    fi
}

# measure SERVER PORT: one run; prints sessions per second
measure() {
    local out
    out=$("$load" "127.0.0.1:$2" "$CONCURRENCY" "$SECS" example.test "$PASSWORD" "$RETR")
    echo "bench: $1 $out" >&2
    case "$out" in *" failed=0 "*) ;; *) echo "bench: $1 had failed sessions" >&2 ;; esac
    sed 's/.*rate=//' <<<"$out"
}

start_lifeboat() {
    "$lifeboat" serve >/dev/null 2>"$work/serve.log" & pids+=($!)
    lifeboat_pid=$!
    wait_port "$lifeboat_port"
}

start_dovecot() { # NAME PORT
    dovecot -F -c "$work/$1/dovecot.conf" & pids+=($!)
    eval "${1//-/_}_pid=$!"
    wait_port "$2"
}

dovecot_port=$(free_port)
tuned_port=$(free_port)
dovecot_config dovecot "$dovecot_port" default
dovecot_config dovecot-tuned "$tuned_port" tuned
start_lifeboat
start_dovecot dovecot "$dovecot_port"
start_dovecot dovecot-tuned "$tuned_port"
# Warm up each (page cache, Dovecot's index files, Lifeboat's login cache) once.
SECS=2 measure lifeboat "$lifeboat_port" >/dev/null
SECS=2 measure dovecot "$dovecot_port" >/dev/null
SECS=2 measure dovecot-tuned "$tuned_port" >/dev/null

declare -A rates
for round in $(seq "$REPEAT"); do
    rates[lifeboat]+="$(measure lifeboat "$lifeboat_port") "
    rates[dovecot]+="$(measure dovecot "$dovecot_port") "
    rates[dovecot-tuned]+="$(measure dovecot-tuned "$tuned_port") "
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lb=$(median <<<"${rates[lifeboat]}")
dc=$(median <<<"${rates[dovecot]}")
dt=$(median <<<"${rates[dovecot-tuned]}")
printf '%-15s %10s  %s\n' server sessions/s "runs"
printf '%-15s %10.1f  %s\n' lifeboat "$lb" "${rates[lifeboat]}"
printf '%-15s %10.1f  %s\n' dovecot "$dc" "${rates[dovecot]}"
printf '%-15s %10.1f  %s\n' dovecot-tuned "$dt" "${rates[dovecot-tuned]}"
awk -v lb="$lb" -v dc="$dc" -v dt="$dt" 'BEGIN {
    printf "lifeboat / dovecot       = %.2fx\n", lb / dc
    printf "lifeboat / dovecot-tuned = %.2fx\n", lb / dt
}'
