#!/usr/bin/env bash
# Runs seglog-tier's S3 tests (crates/seglog-tier/tests/s3.rs) against moto's S3 server:
# installs moto in a venv (from PyPI), starts it on a free loopback port, creates the bucket,
# runs the tests with SEGLOG_S3_ENDPOINT set, and stops the server whatever happens.
#
#   bash tests/s3/run-moto.sh                 # uses `cargo`
#   CARGO_CMD=scargo bash tests/s3/run-moto.sh
#
# Env: SEGLOG_MOTO_VENV (default ~/.cache/seglog/moto-venv), CARGO_CMD (default cargo),
# CARGO_TARGET_DIR as usual.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${SEGLOG_MOTO_VENV:-$HOME/.cache/seglog/moto-venv}"
cargo_cmd="${CARGO_CMD:-cargo}"
moto_spec='moto[server]>=5.1,<6'

if [ ! -x "$venv/bin/moto_server" ]; then
    echo "installing $moto_spec into $venv"
    if ! python3 -m venv "$venv"; then
        # Debian splits venv out of python3.
        rm -rf "$venv"
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet "$moto_spec"
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp -t seglog-moto.XXXXXX.log)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() {
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

endpoint="http://127.0.0.1:$port"
bucket="seglog-test"
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$endpoint/moto-api/" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "moto_server exited:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
conformance_bucket="seglog-conformance"   # object_store's checks empty their bucket
curl -fsS -o /dev/null -X PUT "$endpoint/$bucket"
curl -fsS -o /dev/null -X PUT "$endpoint/$conformance_bucket"
echo "moto S3 server at $endpoint, buckets $bucket and $conformance_bucket"

cd "$root"
SEGLOG_REQUIRE_S3=1 SEGLOG_S3_ENDPOINT="$endpoint" SEGLOG_S3_BUCKET="$bucket" SEGLOG_S3_CONFORMANCE_BUCKET="$conformance_bucket" \
    "$cargo_cmd" nextest run -p seglog-tier -E 'binary(s3)' --no-fail-fast
# Issue 17, acceptance 5 on the wire: the EventStore conformance cases over read-through
# (local retention zero: every read of a sealed segment is a ranged GET to moto).
SEGLOG_REQUIRE_S3=1 SEGLOG_S3_ENDPOINT="$endpoint" SEGLOG_S3_BUCKET="$bucket" \
    "$cargo_cmd" nextest run -p seglog-tests -E 'binary(eventstore_conformance_tiered)' --no-fail-fast
