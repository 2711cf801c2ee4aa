#!/usr/bin/env bash
# The one entry point for checks, used by humans and by .ci/run alike:
#   formatting, lints (warnings are errors), the whole test suite, and smoke runs of the
#   benchmark harness and the demo so neither rots.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests (the README's test command)"
cargo test --workspace --locked

echo "== smoke: benchmark harness (--quick) and seglog demo"
cargo build --release --locked -p seglog-bench -p seglog-cli
target/release/seglog-bench --quick
demo_dir="$(mktemp -d)"
target/release/seglog demo "$demo_dir/demo" --runs 200
rm -rf "$demo_dir"
