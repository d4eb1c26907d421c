#!/usr/bin/env bash
# Rebuild the compiled core and swap the new module in with a rename, so
# Python processes that have the old one loaded (a running fuzz campaign)
# keep a valid mapping instead of a file truncated under them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 setup.py -q build_ext --build-lib build/swap >/dev/null
for so in build/swap/micrograd_fast/_engine*.so; do
    cp "$so" "micrograd_fast/.$(basename "$so").new"
    mv -f "micrograd_fast/.$(basename "$so").new" "micrograd_fast/$(basename "$so")"
done
