#!/usr/bin/env bash
# Runs every Lifeboat test: unit tests, store durability tests, CLI tests.
# Usage: ./test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null; then
    echo "test.sh: cargo not found; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi

cargo test --workspace --locked "$@"
