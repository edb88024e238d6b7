#!/usr/bin/env bash
# The Lifeboat demo, on loopback, in a throw-away directory (nothing in /etc is touched).
# What exists today: configuration, protected users (added and imported), the durable
# Maildir store, and capture through a real Postfix gateway: journal copies while the
# origin is up, diversion during an outage. The rest of the outage drill (automatic
# detection, IMAP, replay) grows here as those parts land.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null; then
    echo "demo.sh: cargo not found; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Building lifeboat"
cargo build --quiet --bins
bin=$PWD/target/debug
lifeboat() { "$bin/lifeboat" "$@"; }
export -f lifeboat 2>/dev/null || true

demo=$(mktemp -d /tmp/lifeboat-demo.XXXXXX)
export LIFEBOAT_CONFIG=$demo/lifeboat.toml
cat > "$LIFEBOAT_CONFIG" <<TOML
# The smallest useful configuration: where the store lives and which origin owns which domains.
data_dir = "$demo/data"
hostname = "continuity.example.test"

[[origin]]
name = "main"
address = "smtp://127.0.0.1:2526"
domains = ["example.test"]
TOML

say "1. The configuration ($LIFEBOAT_CONFIG)"
cat "$LIFEBOAT_CONFIG"
run "$bin/lifeboat" config check

say "2. A configuration mistake names the file, the line and the key"
printf 'data_dir = "%s/data"\nhistory_days = "thirty"\n' "$demo" > "$demo/bad.toml"
run "$bin/lifeboat" --config "$demo/bad.toml" config check || echo "(exit status $?)"

say "3. Protected users: one added by hand, more imported from CSV (existing Dovecot hashes kept)"
echo 's3cret-pass' | run "$bin/lifeboat" user add alice@example.test --password-stdin \
    --alias sales@example.test --alternate-email alice@home.example
cat > "$demo/users.csv" <<CSV
address,password,password_hash,aliases,active,alternate_email
bob@example.test,bob-password,,,yes,bob@home.example
carol@example.test,,{SHA512-CRYPT}\$6\$saltsalt\$n0.5hpTvnmNEa1i03UB.mxBnSsDGt2MC3ZWbR81sHpYLuuxFDjJdxVo.wKj/sryCeJCl3b3rW/qO2qNKFagEz0,,yes,
CSV
run "$bin/lifeboat" user import "$demo/users.csv"
run "$bin/lifeboat" user list

say "4. Mail arrives through the store's one durable write path"
echo "(until the milter lands, a sample writer delivers 5 messages to alice's INBOX)"
run "$bin/lifeboat-store-writer" "$demo/data" alice@example.test 1 5
run find "$demo/data/mail/example.test/alice" -path '*cur/*' -type f

say "5. The index and the Maildirs agree"
run "$bin/lifeboat" store check

say "6. An admin declares an outage (scheduled maintenance), then ends it"
run "$bin/lifeboat" outage begin --reason "origin maintenance"
run "$bin/lifeboat" status
run "$bin/lifeboat" outage end
run "$bin/lifeboat" status --json

if [ "$(id -u)" -ne 0 ]; then
    say "Skipping the Postfix part: it installs and starts Postfix, so run the demo as root"
else
    say "7. A real Postfix gateway on loopback, with Lifeboat's milter and fallback relay"
    ./tests/install-deps.sh
    export PATH="/usr/sbin:$PATH"
    port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    smtpd=$(port); origin=$(port); outside=$(port); milter=$(port); fallback=$(port)
    chmod 755 "$demo"
    # A demo runs everything as root; a real install runs serve as the `lifeboat` account.
    sed -i 's|^hostname = .*|&\nuser = "root"|' "$LIFEBOAT_CONFIG"
    # Point the origin and the listeners at this demo's loopback ports.
    sed -i "s|^address = .*|address = \"smtp://127.0.0.1:$origin\"|" "$LIFEBOAT_CONFIG"
    printf '\n[milter]\nlisten = "inet:127.0.0.1:%s"\n\n[fallback]\nlisten = "127.0.0.1:%s"\n' "$milter" "$fallback" >> "$LIFEBOAT_CONFIG"
    # The demo shows capture only: no user-facing servers on the privileged default ports.
    printf '\n[pop3]\nlisten = []\ntls_listen = []\n\n[imap]\nlisten = []\ntls_listen = []\n\n[submission]\nlisten = []\ntls_listen = []\n' >> "$LIFEBOAT_CONFIG"
    smtp-sink -u postfix 127.0.0.1:"$origin" 64 >/dev/null 2>&1 & sink=$!
    "$bin/lifeboat" serve 2>"$demo/serve.log" & serve=$!
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$milter") 2>/dev/null && break; sleep 0.1; done
    kill -0 "$serve" 2>/dev/null || { cat "$demo/serve.log"; exit 1; }
    trap 'kill $serve $sink 2>/dev/null; ./tests/support/postfix-instance "$demo/postfix" stop >/dev/null 2>&1 || true' EXIT
    ./tests/support/postfix-instance "$demo/postfix" start --smtpd-port "$smtpd" \
        --origin 127.0.0.1:"$origin" --outside 127.0.0.1:"$origin" \
        --milter inet:127.0.0.1:"$milter" --fallback 127.0.0.1:"$fallback"
    echo "Postfix listens on 127.0.0.1:$smtpd; the origin (smtp-sink) on $origin; Lifeboat's milter on $milter"

    send() { swaks --server 127.0.0.1:"$smtpd" --from partner@else.example --to "$1" --header "Subject: $2" >/dev/null; }
    decisions() { sleep 1; grep "milter decision" "$demo/serve.log" | tail -"$1" | sed 's/.*milter decision//'; }

    say "8. Origin up: Postfix delivers to the origin, Lifeboat keeps a journal copy"
    run send sales@example.test "quarterly numbers"
    echo "Lifeboat's log line for it (Postfix itself says nothing about milter decisions):"
    decisions 1

    say "9. The origin goes into maintenance: new mail for protected users is diverted"
    run "$bin/lifeboat" outage begin --reason "origin maintenance"
    run send alice@example.test "are you there?"
    run send outsider@example.test "not a protected user"
    decisions 2
    echo "alice's message was diverted: Lifeboat holds the only copy (to be replayed to the"
    echo "origin after the outage) and removed her from Postfix's transaction; the address"
    echo "Lifeboat does not protect went to the origin as usual."
    run "$bin/lifeboat" status
fi

say "Done"
echo "Everything is in $demo (remove it when you are done)."
echo "Try: LIFEBOAT_CONFIG=$demo/lifeboat.toml $bin/lifeboat --help"
