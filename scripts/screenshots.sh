#!/usr/bin/env bash
# Refreshes the README's pictures (docs/screenshots/*.png): runs the browser tests that take
# them with their screenshot folder pointed at docs/screenshots. The test suite itself writes
# its screenshots to a temporary folder and never changes tracked files.
# Needs what `scripts/setup.sh --test` installs. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export HOLOVITALS_SCREENSHOTS_DIR="$PWD/docs/screenshots"
exec scripts/test.sh tests/e2e --deselect tests/e2e/test_up.py \
  --deselect tests/e2e/test_up_redis_restart.py \
  --deselect tests/e2e/test_readme_first_command.py "$@"
