#!/usr/bin/env bash
# The main job on an embedded default: set up this machine, build (or take from the cache) a
# sample VMware guest, convert it for KVM with `v2v-load convert --verify-boot` (a throwaway copy
# boots to its login prompt), then define and start it on the local libvirt and show it runs.
# Rerunning replaces the previous demo guest. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
v2v() { node bin/v2v-load.js "$@"; }

echo "demo: the sample VMware guest (built on first use: several minutes)"
sample=$(npx --no-install tsx scripts/sample-guest.ts)
vmx=$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).vmx)' "$sample")
echo "demo: $vmx"
v2v inspect "$vmx"

# An isolated libvirt network for the demo guest: no forward, no addresses (nothing reached).
net=v2v-load-demo
if ! virsh -c qemu:///system net-info "$net" >/dev/null 2>&1; then
  xml=$(mktemp)
  printf "<network><name>%s</name><bridge name='v2vdemo0' stp='off'/><dns enable='no'/></network>\n" "$net" >"$xml"
  virsh -c qemu:///system net-define "$xml" >/dev/null
  rm -f "$xml"
fi
virsh -c qemu:///system net-start "$net" >/dev/null 2>&1 || true

name=v2v-load-sample
out=/var/lib/libvirt/images/v2v-load-demo
if virsh -c qemu:///system dominfo "$name" >/dev/null 2>&1; then
  echo "demo: removing the previous demo guest"
  v2v domain destroy "$name" >/dev/null 2>&1 || true
  v2v domain undefine "$name" >/dev/null
fi
rm -rf "$out"
mkdir -p "$out"

echo "demo: convert (domain type and appliance acceleration: auto)"
v2v convert "$vmx" -o "$out" --name "$name" --network "$net" --verify-boot
v2v domain define "$out/$name.xml"
v2v domain start "$name"
sleep 2
v2v domain state "$name"
echo "demo: $name runs on qemu:///system (console: virsh console $name; remove: virsh destroy $name; virsh undefine $name)"
