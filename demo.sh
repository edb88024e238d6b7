#!/usr/bin/env bash
# The Lifeboat demo, on loopback, in a throw-away directory (nothing in /etc is touched).
# What exists today: configuration, protected users (added and imported), the durable
# Maildir store, outage state and status. The full outage drill (Postfix gateway, origin,
# capture, IMAP, replay) grows here as those parts land.
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

say "Done"
echo "Everything is in $demo (remove it when you are done)."
echo "Try: LIFEBOAT_CONFIG=$demo/lifeboat.toml $bin/lifeboat --help"
