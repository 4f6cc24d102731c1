#!/usr/bin/env bash
# Sets everything up and runs FlowFuse on this machine: PostgreSQL, the Tansu broker, the
# database and its migrations, a demo workspace with its admin API key, then `flowfuse serve`
# (command API, query API, relay, projector) in the foreground (Ctrl-C stops it). The command API
# listens on COMMAND_API_ADDR (default 127.0.0.1:8080), GraphQL and GraphiQL on QUERY_API_ADDR
# (127.0.0.1:8081/graphql), the broker on KAFKA_BROKERS (127.0.0.1:9092).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
start_broker

say "building flowfuse (release)"
cargo build --release --quiet
# Wherever cargo builds (CARGO_TARGET_DIR, a config's target-dir), not always ./target.
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
flowfuse="$target_dir/release/flowfuse"

"$flowfuse" migrate
say "creating a demo workspace"
demo=$("$flowfuse" workspace create --name "Demo" --slug "demo-$(date +%s)" --format env)
cat <<MSG

  Demo workspace ready. Paste these into the shell where you try the quickstart:

$(sed 's/^/    /' <<<"$demo")

  The API key is shown this once; only its SHA-256 hash is stored.

  GraphiQL (the key rides in the URL fragment, which never leaves the browser):

    http://${QUERY_API_ADDR:-127.0.0.1:8081}/graphql#key=$(sed -n 's/^export FLOWFUSE_API_KEY=//p' <<<"$demo")

MSG
exec "$flowfuse" serve
