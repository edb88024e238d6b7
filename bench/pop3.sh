#!/usr/bin/env bash
# POP3 benchmark: Lifeboat's POP3 server against Dovecot's, on loopback, in one run.
#
#   pop3_load (CONCURRENCY clients, one user each, whole sessions back to back:
#   USER, PASS, STAT, LIST, UIDL, RETR x RETR, QUIT)  ->  the server under test
#
# Both servers get the same users with the same argon2id password hashes (Lifeboat's
# default), and the same MESSAGES synthetic messages per user: Lifeboat's Maildir is
# copied for Dovecot. Four servers, measured REPEAT times each, alternating:
#   lifeboat         `lifeboat serve` with a [pop3] listener (plaintext: loopback),
#                    default settings (a successful login is remembered for 15 min)
#   lifeboat-nocache the same with [auth] login_cache_seconds = 0: an argon2id hash
#                    per login, like Dovecot
#   dovecot          Dovecot's pop3 with its default settings (auth cache off, a new
#                    login process per connection)
#   dovecot-fast     Dovecot's best case: passwords stored in clear ({PLAIN}, so no
#                    hash at all), reused login processes (service_count = 0). Its
#                    auth cache (auth_cache_size) would not help here: Dovecot still
#                    verifies the argon2id hash on a cache hit (measured: 24.7 vs 23.4
#                    sessions/s). This shows the servers without password hashing.
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
cargo build --release --quiet -p lifeboat-servers --example pop3_load && cargo build --release --quiet -p lifeboat-mailstore --bin lifeboat-store-writer
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
[imap]
listen = []
tls_listen = []
[web]
listen = []
tls_listen = []
[submission]
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
    "$writer" "$work/data" "user$n@example.test" 1 "$MESSAGES" >/dev/null
done
# The same argon2id hashes for Dovecot ({ARGON2ID}$argon2id$...).
python3 - "$work/data/index.sqlite" >> "$work/passwd" <<'PY'
import sqlite3, sys
for address, hash in sqlite3.connect(sys.argv[1]).execute("SELECT address, password_hash FROM users"):
    print(f"{address}:{hash}")
PY
# lifeboat-nocache: a copy of the store (one `serve` per store), no login cache.
nocache_port=$(free_port)
cp -a "$work/data" "$work/data-nocache"
sed -e "s|$work/data\"|$work/data-nocache\"|" \
    -e "s|^listen = \"inet:127.0.0.1:.*|listen = \"inet:127.0.0.1:$(free_port)\"|" \
    -e "/^\[fallback\]/{n;s|.*|listen = \"127.0.0.1:$(free_port)\"|}" \
    -e "s|127.0.0.1:$lifeboat_port|127.0.0.1:$nocache_port|" \
    "$LIFEBOAT_CONFIG" > "$work/lifeboat-nocache.toml"
printf '[auth]\nlogin_cache_seconds = 0\n' >> "$work/lifeboat-nocache.toml"
mkdir -p "$work/dovecot/mail"
cp -a "$work/data/mail/example.test" "$work/dovecot/mail/"
chown -R dovecot:dovecot "$work/dovecot/mail"
bytes=$(du -sb "$work/data/mail" | cut -f1)
echo "bench: $CONCURRENCY users x $MESSAGES messages ($((bytes / 1024)) KiB in all), sessions retrieve $RETR each, ${SECS}s per run, $REPEAT runs per server" >&2

# The same passwords in clear, for dovecot-fast.
sed "s|:{ARGON2ID}.*|:{PLAIN}$PASSWORD|" "$work/passwd" > "$work/passwd-plain"

# dovecot_config NAME PORT MODE: writes $work/NAME/dovecot.conf (MODE: default or fast)
dovecot_config() {
    local dir=$work/$1 passwd=$work/passwd
    if [ "$3" = fast ]; then passwd=$work/passwd-plain; fi
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
# The mail files belong to the dovecot system account (uid < 500) in this bench.
first_valid_uid = 1
first_valid_gid = 1
passdb {
  driver = passwd-file
  args = $passwd
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
    if [ "$3" = fast ]; then
        cat >> "$dir/dovecot.conf" <<CONF
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

start_lifeboat() { # CONFIG LOG PORT
    LIFEBOAT_CONFIG=$1 "$lifeboat" serve >/dev/null 2>"$2" & pids+=($!)
    wait_port "$3"
}

start_dovecot() { # NAME PORT
    dovecot -F -c "$work/$1/dovecot.conf" & pids+=($!)
    eval "${1//-/_}_pid=$!"
    wait_port "$2"
}

dovecot_port=$(free_port)
fast_port=$(free_port)
dovecot_config dovecot "$dovecot_port" default
dovecot_config dovecot-fast "$fast_port" fast
start_lifeboat "$LIFEBOAT_CONFIG" "$work/serve.log" "$lifeboat_port"
start_lifeboat "$work/lifeboat-nocache.toml" "$work/serve-nocache.log" "$nocache_port"
start_dovecot dovecot "$dovecot_port"
start_dovecot dovecot-fast "$fast_port"
# Warm up each (page cache, Dovecot's index files, Lifeboat's login cache) once.
SECS=2 measure lifeboat "$lifeboat_port" >/dev/null
SECS=2 measure lifeboat-nocache "$nocache_port" >/dev/null
SECS=2 measure dovecot "$dovecot_port" >/dev/null
SECS=2 measure dovecot-fast "$fast_port" >/dev/null

declare -A rates
for round in $(seq "$REPEAT"); do
    rates[lifeboat]+="$(measure lifeboat "$lifeboat_port") "
    rates[lifeboat-nocache]+="$(measure lifeboat-nocache "$nocache_port") "
    rates[dovecot]+="$(measure dovecot "$dovecot_port") "
    rates[dovecot-fast]+="$(measure dovecot-fast "$fast_port") "
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lb=$(median <<<"${rates[lifeboat]}")
ln=$(median <<<"${rates[lifeboat-nocache]}")
dc=$(median <<<"${rates[dovecot]}")
dt=$(median <<<"${rates[dovecot-fast]}")
printf '%-16s %10s  %s\n' server sessions/s "runs"
printf '%-16s %10.1f  %s\n' lifeboat "$lb" "${rates[lifeboat]}"
printf '%-16s %10.1f  %s\n' lifeboat-nocache "$ln" "${rates[lifeboat-nocache]}"
printf '%-16s %10.1f  %s\n' dovecot "$dc" "${rates[dovecot]}"
printf '%-16s %10.1f  %s\n' dovecot-fast "$dt" "${rates[dovecot-fast]}"
awk -v lb="$lb" -v ln="$ln" -v dc="$dc" -v dt="$dt" 'BEGIN {
    printf "lifeboat / dovecot               = %.2fx\n", lb / dc
    printf "lifeboat / dovecot-fast          = %.2fx\n", lb / dt
    printf "lifeboat-nocache / dovecot       = %.2fx\n", ln / dc
}'
