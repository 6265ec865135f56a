#!/usr/bin/env bash
# The main job on an embedded default. For now: set up this machine, check it with
# `v2v-load doctor`, then build a small sample VMware guest description (.vmx + VMDK) and read
# it with `v2v-load inspect`. Import (convert, define, start) comes with the conversion work.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
node bin/v2v-load.js doctor "$@"

demo=/var/tmp/v2v-load-demo
mkdir -p "$demo"
if [ ! -f "$demo/sample.vmdk" ]; then
  qemu-img create -q -f vmdk -o subformat=monolithicSparse "$demo/sample.vmdk" 1G
fi
cat > "$demo/sample.vmx" <<'VMX'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "v2v-load-sample"
guestOS = "debian12-64"
memsize = "512"
numvcpus = "1"
firmware = "bios"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "sample.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:12:34:56"
VMX
echo
node bin/v2v-load.js inspect "$demo/sample.vmx"
