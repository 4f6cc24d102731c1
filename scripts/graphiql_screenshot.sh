#!/usr/bin/env bash
# Loads GraphiQL from a running query API in headless Chromium, runs a query with an API key and
# saves a screenshot. Usage, next to a running `flowfuse serve` (e.g. scripts/run.sh):
#
#   FLOWFUSE_API_KEY=ffk_… scripts/graphiql_screenshot.sh [QUERY_URL] [OUT.png]
#
# QUERY_URL defaults to http://127.0.0.1:8081/graphql, OUT.png to docs/graphiql.png. Installs
# Debian's chromium and, under ~/.cache/flowfuse-graphiql, playwright-core and the pinned GraphiQL
# and React releases from the npm registry; the page's requests for those files are answered from
# there, so no CDN is needed (the page still checks their integrity hashes).
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:-http://127.0.0.1:8081/graphql}
out=${2:-docs/graphiql.png}
: "${FLOWFUSE_API_KEY:?set FLOWFUSE_API_KEY to an API key of the workspace to query}"

if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
cache="$HOME/.cache/flowfuse-graphiql"
mkdir -p "$cache/mirror"
if [ ! -d "$cache/node_modules/playwright-core" ]; then
  npm install --silent --prefix "$cache" playwright-core@1 >/dev/null
fi
for package in graphiql@3.8.3 react@18.3.1 react-dom@18.3.1; do
  if [ ! -d "$cache/mirror/$package" ]; then
    tarball=$(cd "$cache" && npm pack --silent "$package")
    mkdir -p "$cache/mirror/$package"
    tar xzf "$cache/$tarball" -C "$cache/mirror/$package" --strip-components=1
    rm "$cache/$tarball"
  fi
done
NODE_PATH="$cache/node_modules" node scripts/graphiql_screenshot.mjs "$url" "$FLOWFUSE_API_KEY" "$cache/mirror" "$out"
