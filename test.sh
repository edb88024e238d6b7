#!/usr/bin/env bash
# Runs every Lifeboat test: unit tests, store durability tests, CLI tests, and the
# end-to-end tests against a real Postfix (installed by tests/install-deps.sh).
# Usage: ./test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null; then
    echo "test.sh: cargo not found; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi

# The end-to-end tests start real Postfix instances (as root, on loopback ports).
./tests/install-deps.sh
if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: the end-to-end tests run Postfix and must run as root (try: sudo ./test.sh)" >&2
    exit 1
fi

cargo test --workspace --locked "$@"
