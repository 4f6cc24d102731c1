#!/usr/bin/env bash
# Sets everything up and runs FlowFuse on this machine: PostgreSQL, the Tansu broker, the
# database and its migrations, a demo workspace with its admin API key, then `flowfuse serve`
# (command API, relay, projector) in the foreground (Ctrl-C stops it). The command API listens on
# COMMAND_API_ADDR (default 127.0.0.1:8080), the broker on KAFKA_BROKERS (127.0.0.1:9092).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
start_broker

say "building flowfuse (release)"
cargo build --release --quiet
flowfuse=target/release/flowfuse

"$flowfuse" migrate
say "creating a demo workspace"
demo=$("$flowfuse" workspace create --name "Demo" --slug "demo-$(date +%s)" --format env)
cat <<MSG

  Demo workspace ready. Paste these into the shell where you try the quickstart:

$(sed 's/^/    /' <<<"$demo")

  The API key is shown this once; only its SHA-256 hash is stored.

MSG
exec "$flowfuse" serve
