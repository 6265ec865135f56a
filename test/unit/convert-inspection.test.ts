/** Inspection's pure helpers: distro families, virtio drivers from module lists, kernel order. */
import { describe, expect, it } from 'vitest';
import {
  compareKernelVersions,
  familyOf,
  hasVirtio,
  moduleNames,
  virtioSupport,
} from '../../src/convert/inspection.js';
import { kernel } from '../harness/mem-guest.js';

describe('familyOf', () => {
  it.each([
    ['linux', 'debian', 'debian'],
    ['linux', 'ubuntu', 'debian'],
    ['linux', 'rhel', 'rhel'],
    ['linux', 'centos', 'rhel'],
    ['linux', 'rocky', 'rhel'],
    ['linux', 'fedora', 'rhel'],
    ['linux', 'sles', 'suse'],
    ['linux', 'archlinux', 'other'],
    ['windows', 'windows', 'windows'],
  ] as const)('%s/%s → %s', (type, distro, family) => {
    expect(familyOf(type, distro)).toBe(family);
  });
});

/** A modules.dep as depmod writes it (compressed modules, dependencies after the colon). */
const MODULES_DEP = `kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/scsi/virtio_scsi.ko.zst:
kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko
kernel/drivers/virtio/virtio_balloon.ko.gz:
kernel/drivers/scsi/vmw_pvscsi.ko.xz:
kernel/drivers/ata/ata-piix.ko.xz:
`;

describe('moduleNames', () => {
  it('strips directories and .ko(.xz|.zst|.gz), writes - as _, ignores dependencies', () => {
    expect([...moduleNames(MODULES_DEP)].sort()).toEqual([
      'ata_piix',
      'virtio_balloon',
      'virtio_blk',
      'virtio_net',
      'virtio_scsi',
      'vmw_pvscsi',
    ]);
  });
});

describe('virtioSupport', () => {
  it('reads modules.dep and modules.builtin together', () => {
    const builtin =
      'kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\n';
    expect(virtioSupport(MODULES_DEP, builtin)).toEqual({
      blk: true,
      scsi: true,
      net: true,
      pci: true,
      console: true,
      rng: false,
      balloon: true,
    });
  });

  it('a VMware-era kernel without virtio has none', () => {
    const s = virtioSupport('kernel/drivers/scsi/vmw_pvscsi.ko:\n', '');
    expect(Object.values(s).every((v) => v === false)).toBe(true);
  });
});

describe('hasVirtio', () => {
  it('needs virtio_blk, virtio_net and virtio_pci', () => {
    expect(hasVirtio(kernel('6.1.0-28-amd64'))).toBe(true);
    for (const missing of ['blk', 'net', 'pci'] as const) {
      const k = kernel('6.1.0-28-amd64');
      k.virtio[missing] = false;
      expect(hasVirtio(k), missing).toBe(false);
    }
    const k = kernel('6.1.0-28-amd64');
    k.virtio.scsi = false;
    k.virtio.console = false;
    expect(hasVirtio(k)).toBe(true);
  });
});

describe('compareKernelVersions', () => {
  it('sorts like sort -V: numeric parts as numbers', () => {
    expect(
      [
        '6.1.0-28-amd64',
        '5.10.0-9-amd64',
        '6.1.0-3-amd64',
        '5.10.0-30-amd64',
        '6.1.0-28-cloud-amd64',
      ].sort(compareKernelVersions),
    ).toEqual([
      '5.10.0-9-amd64',
      '5.10.0-30-amd64',
      '6.1.0-3-amd64',
      '6.1.0-28-amd64',
      '6.1.0-28-cloud-amd64',
    ]);
    expect(compareKernelVersions('3.10.0-1160.el7.x86_64', '3.10.0-1160.el7.x86_64')).toBe(0);
    expect(compareKernelVersions('4.18.0-80.el8', '4.18.0-513.el8')).toBeLessThan(0);
  });
});
