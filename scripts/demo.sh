#!/usr/bin/env bash
# The README's main job on an embedded default: set up this machine (Debian packages, npm ci,
# build, services), build (or take from its cache) the sample VMware guest, then
# `v2v-load import` it on the local libvirt (qemu:///system): convert, place the disk in a pool,
# define, start, and watch its own console until it shows a login prompt. Prints the summary.
# Rerunning replaces the previous demo guest. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
v2v() { node bin/v2v-load.js "$@"; }
virsh_() { virsh -c qemu:///system "$@"; }

echo "demo: the sample VMware guest (built on first use: several minutes; then cached)"
sample=$(npx --no-install tsx scripts/sample-guest.ts)
vmx=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).vmx)' "$sample")
echo "demo: $vmx"
v2v inspect "$vmx"

# An isolated libvirt network for the demo guest: no forward, no addresses (nothing reached).
net=v2v-load-demo
if ! virsh_ net-info "$net" >/dev/null 2>&1; then
  xml=$(mktemp)
  printf "<network><name>%s</name><bridge name='v2vdemo0' stp='off'/><dns enable='no'/></network>\n" "$net" >"$xml"
  virsh_ net-define "$xml" >/dev/null
  rm -f "$xml"
fi
virsh_ net-start "$net" >/dev/null 2>&1 || true

name=v2v-load-sample
pool=/var/lib/libvirt/images/v2v-load-demo
if virsh_ dominfo "$name" >/dev/null 2>&1; then
  echo "demo: removing the previous demo guest"
  virsh_ destroy "$name" >/dev/null 2>&1 || true
  virsh_ undefine "$name" >/dev/null
fi
rm -rf "$pool"
mkdir -p "$pool"
chmod 0755 "$pool"

echo "demo: v2v-load import (convert, place, define, start, verify the boot; under TCG this takes minutes)"
v2v import "$vmx" --name "$name" --pool "$pool" --network "$net" --verify-boot --verify-timeout 900
virsh_ domstate "$name"
echo "demo: $name runs on qemu:///system (console: virsh console $name; remove: virsh destroy $name; virsh undefine $name)"
