#!/usr/bin/env bash
# Install everything the tests need (Python packages, and Debian's chromium for the browser tests
# when it is missing), then run the whole test suite. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
# Lint and format first: a violation fails the run before any test starts (ruff settings: pyproject.toml).
python -m ruff check --quiet .
python -m ruff format --check --quiet .
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
# One test process per core (TEST_WORKERS=N to choose), each test file whole in one of them (its module
# fixtures are built once); conftest gives each process one torch thread so they do not fight over cores.
exec python -m pytest -q -n "${TEST_WORKERS:-auto}" --dist loadfile "$@"
