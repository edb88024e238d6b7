#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo-fuzz (libFuzzer),
# installing cargo-fuzz first if it is missing. CI runs it with a short time so the
# targets keep compiling and catch regressions; for a longer campaign see bench/README
# or run e.g. `fuzz/run.sh 3600 imap_session`.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    cargo install --locked --quiet cargo-fuzz
fi
# cargo-fuzz needs nightly flags (-Zsanitizer); the stable toolchain accepts them this way.
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    rm -rf "artifacts/$target"
    echo "== $target: ${seconds}s" >&2
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 |
        grep -E "^(#[0-9]+ *DONE|Done|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)" || true
    # libFuzzer exits non-zero on a crash; pipefail would hide which target.
    if [ -n "$(ls "artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz/run.sh: $target found a crash: fuzz/artifacts/$target" >&2
        exit 1
    fi
done
