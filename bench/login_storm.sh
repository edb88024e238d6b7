#!/usr/bin/env bash
# Login storm: when an outage starts, every user's phone and laptop log in within the
# same minute, and each first login checks an argon2id hash (19 MiB of memory, tens of
# milliseconds of CPU). USERS users log in over IMAP at once (each from its own
# connection, spread over 127.0.0.2… so per-address limits do not interfere); the
# script prints how long until every login was answered, how many succeeded, the
# serve process's peak RSS (VmHWM) during the storm, and its RSS WAIT seconds after.
# Target (issue 12): 1,000 users, peak < 300 MB, under 100 MB a minute later.
#
# usage: bench/login_storm.sh [USERS] [WAIT]   (defaults 1000 60; as root or not)
# Set LIFEBOAT=path/to/lifeboat to measure another build (e.g. an older commit).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000}
WAIT=${2:-60}
PASSWORD=storm-password-1
if [ -z "${LIFEBOAT:-}" ]; then
    cargo build --release --quiet --bin lifeboat
    LIFEBOAT=${CARGO_TARGET_DIR:-$PWD/target}/release/lifeboat
fi
work=$(mktemp -d /tmp/lifeboat-storm.XXXXXX)
trap 'kill $serve 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
imap=$(port)
cat > "$work/lifeboat.toml" <<TOML
data_dir = "$work/data"
hostname = "storm.test"
user = "$(id -un)"
[[origin]]
name = "main"
address = "smtp://127.0.0.1:$(port)"
domains = ["storm.test"]
[milter]
listen = "inet:127.0.0.1:$(port)"
[fallback]
listen = "127.0.0.1:$(port)"
[imap]
listen = ["127.0.0.1:$imap"]
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
[auth]
allow_plaintext = true
TOML
export LIFEBOAT_CONFIG=$work/lifeboat.toml
{
    echo "address,password,password_hash,aliases,active,alternate_email"
    for i in $(seq "$USERS"); do echo "user$i@storm.test,$PASSWORD,,,yes,"; done
} > "$work/users.csv"
echo "importing $USERS users (one argon2id hash each)..." >&2
"$LIFEBOAT" user import "$work/users.csv" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$LIFEBOAT" serve 2>"$work/serve.log" & serve=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$imap") 2>/dev/null && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k {print int($2/1024)}' "/proc/$serve/status"; }
echo "serve RSS before: $(rss VmRSS) MB" >&2
python3 - "$imap" "$USERS" "$PASSWORD" <<'PY'
import asyncio, sys, time
port, users, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
async def login(i):
    source = f"127.0.0.{2 + i // 40}"
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=1 << 16)
    await reader.readline()
    writer.write(f"a LOGIN user{i + 1}@storm.test {password}\r\n".encode())
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line or line.startswith(b"a "):
            break
    writer.close()
    return line.startswith(b"a OK")
async def main():
    started = time.monotonic()
    results = await asyncio.gather(*(login(i) for i in range(users)), return_exceptions=True)
    ok = sum(1 for r in results if r is True)
    print(f"{ok} of {users} logins succeeded; all answered in {time.monotonic() - started:.1f} s")
asyncio.run(main())
PY
echo "serve peak RSS during the storm: $(rss VmHWM) MB" 
sleep "$WAIT"
echo "serve RSS ${WAIT} s later: $(rss VmRSS) MB"
