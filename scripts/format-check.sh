#!/bin/sh
# Fails if any C file is not clang-format clean. Usage: scripts/format-check.sh [--fix]
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--fix" ]; then clang-format -i $files; exit 0; fi
clang-format --dry-run --Werror $files
