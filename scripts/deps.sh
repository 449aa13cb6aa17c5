#!/usr/bin/env bash
# Installs what inferd needs to build, test and run, on Debian: the missing
# Debian packages (quietly, idempotently; via sudo when not root), then the
# end-to-end tests' npm packages (npm ci, only when package-lock.json changed).
# Called by `make run` and `make test`; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  libevent-dev libhiredis-dev libjansson-dev libpcre2-dev libutf8proc-dev
  libcurl4-openssl-dev libsqlite3-dev libcriterion-dev
  redis-server nginx curl nodejs npm valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# nodejs/npm may come from outside Debian (a newer Node already on PATH): accept it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi

if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# End-to-end test packages (the official openai SDK). Re-run npm ci only when
# the lock file is newer than the installed tree.
if [ -f tests/e2e/package-lock.json ]; then
  stamp=tests/e2e/node_modules/.inferd-stamp
  if [ ! -f "$stamp" ] || [ tests/e2e/package-lock.json -nt "$stamp" ]; then
    (cd tests/e2e && npm ci --silent --no-audit --no-fund >/dev/null)
    touch "$stamp"
  fi
fi
