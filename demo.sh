#!/usr/bin/env bash
# The Lifeboat demo, on loopback, in a throw-away directory (nothing in /etc is touched):
# configuration, users and the store, then (as root) a real outage drill through a
# private Postfix gateway: journal copies while the origin is up; the origin dies and
# Lifeboat detects it; new mail is diverted; a user reads it over IMAP and replies over
# submission; the origin returns; replay delivers everything; the counts are checked.
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
# The account \`serve\` and the admin commands run as. A real install uses its own
# \`lifeboat\` account (contrib/systemd/sysusers.d); the demo runs as whoever starts it.
user = "$(id -un)"

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

say "4. An admin declares an outage (scheduled maintenance), then ends it"
run "$bin/lifeboat" outage begin --reason "origin maintenance"
run "$bin/lifeboat" status
run "$bin/lifeboat" outage end
run "$bin/lifeboat" status --json

if [ "$(id -u)" -ne 0 ]; then
    say "Skipping the outage drill: it installs and starts Postfix, so run the demo as root"
else
    say "5. A real Postfix gateway on loopback, with Lifeboat attached, and an origin server"
    ./tests/install-deps.sh
    export PATH="/usr/sbin:$PATH"
    port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    smtpd=$(port); origin=$(port); outside=$(port); milter=$(port); fallback=$(port)
    imap=$(port); submission=$(port); web=$(port)
    chmod 755 "$demo"
    sed -i "s|^address = .*|address = \"smtp://127.0.0.1:$origin\"|" "$LIFEBOAT_CONFIG"
    cat >> "$LIFEBOAT_CONFIG" <<TOML

[milter]
listen = "inet:127.0.0.1:$milter"

[fallback]
listen = "127.0.0.1:$fallback"

# Loopback listeners may take logins without TLS; a real install also listens on the
# network with a certificate ([tls]).
[imap]
listen = ["127.0.0.1:$imap"]
tls_listen = []

[web]
listen = ["127.0.0.1:$web"]
tls_listen = []

[submission]
listen = ["127.0.0.1:$submission"]
tls_listen = []
relay = "smtp://127.0.0.1:$smtpd"

[pop3]
listen = []
tls_listen = []

[notify]
admins = ["postmaster@else.example"]
TOML
    # The origin: Postfix's smtp-sink, keeping every message it takes as a file.
    mkdir -p "$demo/origin-mail" "$demo/outside-mail" && chmod 777 "$demo/origin-mail" "$demo/outside-mail"
    start_origin() {
        for _ in $(seq 50); do
            smtp-sink -u postfix -d "$demo/origin-mail/%H%M%S." 127.0.0.1:"$origin" 64 >/dev/null 2>&1 & sink=$!
            sleep 0.2
            kill -0 "$sink" 2>/dev/null && return 0
        done
        return 1
    }
    start_origin
    smtp-sink -u postfix -d "$demo/outside-mail/%H%M%S." 127.0.0.1:"$outside" 64 >/dev/null 2>&1 & world=$!
    "$bin/lifeboat" serve 2>"$demo/serve.log" & serve=$!
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$milter") 2>/dev/null && break; sleep 0.1; done
    kill -0 "$serve" 2>/dev/null || { cat "$demo/serve.log"; exit 1; }
    trap 'kill $serve $sink $world 2>/dev/null; ./tests/support/postfix-instance "$demo/postfix" stop >/dev/null 2>&1 || true' EXIT
    ./tests/support/postfix-instance "$demo/postfix" start --smtpd-port "$smtpd" \
        --origin 127.0.0.1:"$origin" --outside 127.0.0.1:"$outside" \
        --milter inet:127.0.0.1:"$milter" --fallback 127.0.0.1:"$fallback"
    echo "Postfix (the gateway) listens on 127.0.0.1:$smtpd; the origin on $origin; the"
    echo "outside world on $outside; Lifeboat's IMAP on $imap and submission on $submission."

    # Every count the demo shows is also checked: a wrong one ends it with exit 1.
    expect() {
        if [ "$2" != "$3" ]; then
            echo "MISMATCH: $1: expected $2, found $3" >&2
            exit 1
        fi
    }
    send() { swaks --server 127.0.0.1:"$smtpd" --from partner@else.example --to "$1" --header "Subject: $2" >/dev/null; }
    decisions() { sleep 1; grep "milter decision" "$demo/serve.log" | tail -"$1" | sed 's/.*milter decision//'; }
    state() { "$bin/lifeboat" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["origins"][0]["state"])'; }
    wait_state() { for _ in $(seq 600); do [ "$(state)" = "$1" ] && return 0; sleep 0.1; done; echo "state never became $1" >&2; return 1; }
    at_origin() { grep -l "$1" "$demo"/origin-mail/* 2>/dev/null | wc -l; }

    say "6. The origin is up: Postfix delivers to it, Lifeboat keeps a journal copy"
    run send sales@example.test "quarterly numbers"
    decisions 1

    say "7. The origin dies. The next delivery fails, Lifeboat probes at once and declares the outage"
    kill "$sink"; wait "$sink" 2>/dev/null || true
    started=$(date +%s.%N)
    run send alice@example.test "are you there?"
    wait_state outage
    echo "outage declared $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s after the message arrived"
    run send alice@example.test "the contract, signed"
    run send bob@example.test "lunch?"
    sleep 2
    run "$bin/lifeboat" status
    echo "Postfix's queue is empty: Lifeboat holds the only copies until the origin is back."
    run postqueue -c "$demo/postfix/etc" -p

    say "8. Alice reads her mail over IMAP (any client works; this is Python's imaplib)"
    python3 - "$imap" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice@example.test", "s3cret-pass")
typ, count = m.select("INBOX")
print(f"INBOX holds {count[0].decode()} messages:")
# The journal copy from before the outage (sent to her alias) and the two diverted ones.
if count[0] != b"3":
    sys.exit(f"MISMATCH: alice's INBOX: expected 3 messages, found {count[0].decode()}")
typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for part in data:
    if isinstance(part, tuple):
        print("  ", part[1].decode().strip())
m.logout()
PY

    say "8b. ... or in her browser: the web portal (here with curl, as a browser would ask)"
    jar="$demo/cookies.txt"
    curl -s -c "$jar" -o /dev/null -d 'address=alice%40example.test&password=s3cret-pass' "http://127.0.0.1:$web/login"
    page=$(curl -s -b "$jar" -L "http://127.0.0.1:$web/")
    echo "$page" | grep -o '<strong>Your mail server[^<]*</strong>' | sed 's/<[^>]*>//g' || true
    rows=$(echo "$page" | grep -c '<tr class=' || true)
    echo "http://127.0.0.1:$web/ lists $rows messages in her INBOX (newest first)."
    expect "messages in the web portal's INBOX" 3 "$rows"

    say "9. Alice replies over submission: to a partner outside, and to Bob, a colleague"
    python3 - "$submission" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.login("alice@example.test", "s3cret-pass")
s.sendmail("alice@example.test", ["partner@else.example", "bob@example.test"],
    b"From: Alice <alice@example.test>\r\nTo: partner@else.example, bob@example.test\r\n"
    b"Subject: Re: the contract, signed\r\nMessage-ID: <reply1@example.test>\r\n\r\nThanks, received.\r\n")
s.quit()
print("sent")
PY
    sleep 2
    outside_copies=$(grep -l 'Re: the contract' "$demo"/outside-mail/* 2>/dev/null | wc -l)
    echo "The partner got it through Postfix: $outside_copies message(s) at the outside sink."
    expect "replies at the outside sink" 1 "$outside_copies"
    run "$bin/lifeboat" status

    say "10. The origin returns. Lifeboat sees it recover, and replay sends everything back"
    start_origin
    started=$(date +%s.%N)
    wait_state normal
    echo "back to normal $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s after the origin returned (3 good probes over 10 s, then replay)"
    grep "origin state changed" "$demo/serve.log" | sed 's/^[^ ]* *//' || true
    run "$bin/lifeboat" status
    replayed=$(at_origin "X-Lifeboat-Replay-ID")
    sent=$(at_origin "^X-Lifeboat-Sent: ")
    echo "The origin received $replayed replayed message(s), $sent of them Alice's sent copy; each"
    echo "carries its own X-Lifeboat-Replay-ID, so a repeat would be visible."
    # 3 diverted for alice and bob, Bob's copy of Alice's reply, Alice's sent copy.
    expect "messages replayed to the origin" 5 "$replayed"
    expect "sent copies replayed to the origin" 1 "$sent"
    echo "The counts match: 5 held during the outage, 5 replayed."

    say "11. The index and the Maildirs agree"
    run "$bin/lifeboat" store check

    # Only with someone at a terminal; CI and scripts go straight on.
    if [ -t 0 ]; then
        say "Try it yourself (Lifeboat keeps running until you press Enter, or for 10 minutes)"
        echo "  web portal:  http://127.0.0.1:$web/   user alice@example.test, password s3cret-pass"
        echo "  IMAP:        127.0.0.1:$imap         user alice@example.test, password s3cret-pass"
        echo "  submission:  127.0.0.1:$submission"
        echo "  send mail:   swaks --server 127.0.0.1:$smtpd --to alice@example.test"
        echo "  outage:      LIFEBOAT_CONFIG=$LIFEBOAT_CONFIG $bin/lifeboat outage begin"
        read -r -t 600 _ || true
    fi
fi

say "Done"
echo "Everything is in $demo (remove it when you are done)."
echo "Try: LIFEBOAT_CONFIG=$demo/lifeboat.toml $bin/lifeboat --help"
