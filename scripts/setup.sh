#!/usr/bin/env bash
# Prepares a Debian machine (as root) or a developer's machine to build and run FlowFuse:
# build tools, a Rust toolchain, and a PostgreSQL server reachable at DATABASE_URL.
# Safe to run again: it only installs or starts what is missing.
set -euo pipefail

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/flowfuse}"
export DATABASE_URL

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; exit 1
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if command -v apt-get >/dev/null; then
  apt_install build-essential pkg-config ca-certificates curl git python3 python3-pip postgresql-client
fi

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  say "installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# PostgreSQL: use the server at DATABASE_URL if it answers; otherwise install and start a local one.
pg_host=$(python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 5432)' "$DATABASE_URL")
read -r host port <<<"$pg_host"
if ! pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
  if command -v apt-get >/dev/null && [[ "$host" == 127.0.0.1 || "$host" == localhost ]]; then
    fresh_install=no
    dpkg -s postgresql >/dev/null 2>&1 || fresh_install=yes
    apt_install postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ "$fresh_install" = yes ]; then
      # A development server: local TCP connections as the postgres user need no password,
      # matching the default DATABASE_URL. Do not do this on a shared machine.
      hba="/etc/postgresql/$version/main/pg_hba.conf"
      as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    fi
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h "$host" -p "$port" && break; sleep 1; done
  fi
  pg_isready -q -h "$host" -p "$port" || { say "PostgreSQL is not reachable at $host:$port (DATABASE_URL)"; exit 1; }
fi
say "PostgreSQL is up at $host:$port"

# The analytics-consumer example and its test use confluent-kafka from PyPI (Debian's package
# bundles a librdkafka too old for the broker's handshake).
if ! python3 -c 'import confluent_kafka' 2>/dev/null; then
  say "installing confluent-kafka for python3"
  python3 -m pip install --quiet confluent-kafka 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages confluent-kafka
fi

# Tansu, a Kafka-wire-compatible broker (Apache-2.0) from crates.io, for development and tests.
# Its default build has no storage engine; `dynostore` adds the in-memory one used here. The first
# install compiles for about 20 minutes.
if [ -z "${TANSU_BIN:-}" ]; then
  if command -v tansu >/dev/null; then
    TANSU_BIN=$(command -v tansu)
  else
    TANSU_BIN="$HOME/.cargo/bin/tansu"
    if [ ! -x "$TANSU_BIN" ]; then
      say "installing the Tansu broker (cargo install tansu --features dynostore; about 20 minutes, once)"
      cargo install tansu --locked --features dynostore
    fi
  fi
fi
export TANSU_BIN
say "Tansu broker: $TANSU_BIN"

# Starts a broker on KAFKA_BROKERS (default 127.0.0.1:9092) unless something listens there.
# Memory storage: it forgets every topic when it stops, which FlowFuse survives (the relay
# republishes from the event store).
start_broker() {
  : "${KAFKA_BROKERS:=127.0.0.1:9092}"
  local hostport=${KAFKA_BROKERS%%,*}
  if (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null; then
    say "a broker already listens on $hostport"
    return
  fi
  say "starting Tansu on $hostport (log: /tmp/flowfuse-tansu.log)"
  nohup "$TANSU_BIN" broker --listener-url "tcp://$hostport" --advertised-listener-url "tcp://$hostport" \
    --storage-engine memory://tansu/ >/tmp/flowfuse-tansu.log 2>&1 &
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null && return
    sleep 0.1
  done
  say "Tansu did not start; see /tmp/flowfuse-tansu.log"
  exit 1
}
