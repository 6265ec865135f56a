/**
 * Builds (or takes from its cache under /var/tmp/v2v-load-fixtures) the sample VMware guest of
 * the README's main job: a Debian 12 guest as VMware exports it (pvscsi, vmxnet3,
 * open-vm-tools, an initramfs without virtio, fstab and grub on /dev/sda1). The builder is
 * test/fixtures/debian-guest/; the first build takes minutes (debootstrap, then libguestfs).
 * Prints one JSON line: {"vmx": ..., "vmdk": ..., "name": ..., "mac": ...}.
 */
import { debianGuest } from '../test/harness/debian-guest.js';

const g = await debianGuest('base');
process.stdout.write(`${JSON.stringify({ vmx: g.vmx, vmdk: g.vmdk, name: g.name, mac: g.mac })}\n`);
