#!/usr/bin/env bash
# The main job on an embedded default. For now: set up this machine and check it with
# `v2v-load doctor` (tools, libvirtd, libguestfs, free space). The import issues turn this into
# building a sample VMware guest and importing it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
node bin/v2v-load.js doctor "$@"
