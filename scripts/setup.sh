#!/usr/bin/env bash
# Everything a fresh machine of this project's kind needs before v2v-load runs or is tested:
# Debian packages, npm dependencies (npm ci), the build, and the services (virtlogd, libvirtd).
# Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# npm ci only when the lock file changed since the last install (it wipes node_modules).
stamp=node_modules/.v2v-load-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

echo "setup: build"
npm run --silent build

echo "setup: services"
bash scripts/services.sh start
