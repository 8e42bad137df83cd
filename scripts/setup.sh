#!/usr/bin/env bash
# Installs everything HoloVitals Sync needs into this checkout, with nothing downloaded
# from outside the package registries:
#   .venv/   Python 3.11 virtualenv with the package (editable) and its pinned dependencies
#   .tools/  bun and Node 22 from the npm registry, for Reflex's frontend build
# With --test it also installs the test dependencies, a real FHIR server (SEKMET, from PyPI,
# into .tools/fhir-server) and Debian's chromium for browser tests.
# Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi

# Plain if-blocks: under `set -e` a `test && …` line whose test is false ends the script.
extras=""
stamp=".venv/.installed"
if [ "$want_test" = 1 ]; then
  extras="[dev]"
  stamp=".venv/.installed-dev"
fi
digest=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "setup: installing Python packages${extras}"
  .venv/bin/python -m pip install -q -e ".${extras}"
  echo "$digest" > "$stamp"
fi

# Reflex needs bun or Node >= 22; its own installer downloads bun from the internet,
# which hospital firewalls (and this project's CI) refuse. npm's registry has both.
if [ ! -x .tools/node_modules/.bin/bun ] || [ ! -x .tools/node_modules/.bin/node ]; then
  echo "setup: installing bun and node 22 into .tools"
  npm install --prefix .tools --no-audit --no-fund --loglevel=error bun@1.4.5 node@22 >/dev/null
fi

# A real FHIR server none of us wrote, for the integration suite (its own virtualenv: its
# pins are not the product's).
if [ "$want_test" = 1 ]; then
  fhir_stamp=".tools/fhir-server/.installed"
  fhir_digest=$(sha256sum tests/fhir_server/requirements.txt | cut -c1-16)
  if [ "$(cat "$fhir_stamp" 2>/dev/null)" != "$fhir_digest" ]; then
    echo "setup: installing the SEKMET FHIR server for the integration tests"
    "$python_bin" -m venv .tools/fhir-server
    .tools/fhir-server/bin/python -m pip install -q -r tests/fhir_server/requirements.txt
    echo "$fhir_digest" > "$fhir_stamp"
  fi
fi

if [ "$want_test" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: browser tests need Debian's chromium (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi
echo "setup: done"
