#!/usr/bin/env bash
# Sets up what the tests need and runs every check: formatting, lints, and all tests against
# real PostgreSQL. Each test creates (and drops) its own database on the server of DATABASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

say "checking formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

say "migrating $DATABASE_URL"
cargo run --quiet -- migrate

say "running the tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast
fi
