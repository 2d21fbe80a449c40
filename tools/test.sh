#!/usr/bin/env bash
# The README's test command: sets up and builds if needed, then runs every
# suite (lit: dialects, passes, importer, driver; the reference self-tests)
# through ctest, whose summary line ends the output.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh" --tests
cd "$root/build"
ctest --output-on-failure --no-tests=error
