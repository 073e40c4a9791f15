#!/usr/bin/env bash
# The two set-up commands of the README:
#   bash scripts/dev.sh run    install everything, build the extension, start the backend on 127.0.0.1
#   bash scripts/dev.sh test   install everything, then run the whole test suite (lint, API fuzzing, pytest; the
#                              Firefox build is linted by addons-linter and driven in firefox-esr inside pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v firefox-esr >/dev/null 2>&1 || need_apt+=(firefox-esr)  # the Firefox add-on's end-to-end test
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)

install() {
  if ((${#need_apt[@]})); then
    echo "installing system packages: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    # torch==2.13.0 is pinned in pyproject.toml: pip takes the local CPU build, not a multi-GB CUDA one
    "$PY" -m pip install -q -e '.[dev]'
    touch "$stamp"
  fi
  # Node tools of the tests, pinned by package-lock.json: puppeteer-core (drives the system firefox-esr over
  # WebDriver BiDi; it downloads no browser), addons-linter (the Firefox build), axe-core (accessibility).
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

case "${1:-}" in
  run)
    install
    "$PY" scripts/build_extension.py --target dev
    exec "$PY" -m backend serve "${@:2}"
    ;;
  test)
    install
    "$PY" -m ruff check .
    "$PY" scripts/build_extension.py --target dev >/dev/null
    "$PY" scripts/api_fuzz.py
    exec "$PY" -m pytest "${@:2}"
    ;;
  install)
    install
    ;;
  *)
    echo "usage: bash scripts/dev.sh run|test|install" >&2
    exit 2
    ;;
esac
