#!/usr/bin/env bash
# The one entry point for checks, used by humans and by .ci/run alike:
#   formatting, lints (warnings are errors), and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests (the README's test command)"
cargo test --workspace --locked

echo "== benchmark harness smoke run"
cargo run --release --locked -p seglog-bench -- --quick --writers 1,4
