#!/usr/bin/env bash
# Installs the Debian packages v2v-load drives and tests against. Idempotent: a package
# already installed costs nothing. Needs root (apt-get).
set -euo pipefail

PACKAGES=(
  qemu-utils qemu-system-x86
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
  libguestfs-tools guestfs-tools libhivex-bin python3-guestfs virt-v2v
  nbdkit libnbd-bin
  python3-libvirt
  openssh-server openssh-client
  linux-image-amd64 klibc-utils cpio
  debootstrap extlinux dpkg-repack
  syslinux mtools dosfstools
  ntfs-3g xorriso
  gcc libc6-dev
  chromium
  redis-server
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/v2v-load-apt.log 2>&1 || {
  tail -n 50 /tmp/v2v-load-apt.log >&2
  exit 1
}
echo "install-deps: done"
