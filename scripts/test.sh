#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up (packages, npm ci, build, services), then
# lint, type check, unit and integration tests. Ends with the line `N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "test: lint and type check"
npx biome check .
npm run --silent typecheck

echo "test: unit and integration tests"
# --update=none: a missing golden file fails the run instead of being written (a local
# `npx vitest run` still writes it, for review).
npx vitest run --update=none
