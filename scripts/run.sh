#!/usr/bin/env bash
# Sets everything up and brings the system up on this machine: PostgreSQL, the database and its
# migrations, then checks the event store's hash chains.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

say "building flowfuse"
cargo build --release --quiet
flowfuse=target/release/flowfuse

"$flowfuse" migrate
"$flowfuse" events verify --all
say "ready: try 'target/release/flowfuse events tail' or 'target/release/flowfuse --help'"
