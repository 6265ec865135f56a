/**
 * Extending an initramfs without rebuilding it: the cpio newc writer (golden bytes, and read
 * back by the real cpio program), the module closure from modules.dep, the appended image, and
 * when GuestOS plans an extension or a rebuild.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendArchive,
  moduleClosure,
  moduleName,
  modulesArchive,
} from '../../src/convert/initramfs.js';
import { describeAction, Plan } from '../../src/convert/plan.js';
import { newcArchive, parentDirs } from '../../src/formats/cpio.js';
import { DebianGuestOs } from '../../src/guestos/debian.js';
import { VIRTIO_DRIVERS } from '../../src/hvtarget/kvm.js';
import {
  conversionContext,
  debianInspection,
  MemGuest,
  vmwareSource,
} from '../harness/mem-guest.js';

const exec = promisify(execFile);
const GOLDEN = path.join(import.meta.dirname, '../golden/convert/initramfs');

/** A hex dump, 16 bytes a line with their printable characters, for golden files. */
function hexdump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = [...b.subarray(i, i + 16)];
    const hex = row.map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const text = row.map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${text}`);
  }
  return `${lines.join('\n')}\n`;
}

// A modules.dep in the kernel's format (paths relative to /lib/modules/VERSION).
const MODULES_DEP = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/scsi/vmw_pvscsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
`;

describe('cpio newc', () => {
  const sample = () =>
    newcArchive([
      { path: 'usr', kind: 'dir', perm: 0o755 },
      { path: 'usr/lib', kind: 'dir', perm: 0o755 },
      { path: 'usr/lib/a.ko', kind: 'file', perm: 0o644, data: Buffer.from('module a\n') },
      { path: 'usr/lib/modules.dep', kind: 'file', perm: 0o600, data: Buffer.from('a.ko:\n') },
    ]);

  it('writes the archive byte for byte (golden), headers and data padded to 4 bytes', async () => {
    const a = sample();
    expect(a.length % 4).toBe(0);
    expect(a.subarray(0, 6).toString('ascii')).toBe('070701');
    await expect(hexdump(a)).toMatchFileSnapshot(path.join(GOLDEN, 'sample.cpio.hex'));
  });

  describe('read back by the cpio program', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-cpio-'));
    });
    afterAll(async () => {
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('lists every member with its mode and extracts the same bytes', async () => {
      const file = path.join(dir, 'a.cpio');
      await fs.writeFile(file, sample());
      const { stdout: list } = await exec('sh', ['-c', 'cpio -it --quiet < "$1"', 'sh', file]);
      expect(list.trim().split('\n')).toEqual([
        'usr',
        'usr/lib',
        'usr/lib/a.ko',
        'usr/lib/modules.dep',
      ]);
      const out = path.join(dir, 'x');
      await fs.mkdir(out);
      await exec('sh', ['-c', 'cd "$1" && cpio -id --quiet < "$2"', 'sh', out, file]);
      expect(await fs.readFile(path.join(out, 'usr/lib/a.ko'), 'utf8')).toBe('module a\n');
      expect(await fs.readFile(path.join(out, 'usr/lib/modules.dep'), 'utf8')).toBe('a.ko:\n');
      expect((await fs.stat(path.join(out, 'usr/lib/modules.dep'))).mode & 0o777).toBe(0o600);
      expect((await fs.stat(path.join(out, 'usr/lib'))).isDirectory()).toBe(true);
    });
  });

  it('refuses absolute paths, .. and empty parts', () => {
    for (const p of ['/etc/passwd', 'a/../b', 'a//b', '']) {
      expect(() => newcArchive([{ path: p, kind: 'dir', perm: 0o755 }])).toThrow(
        `cpio: member path '${p}' must be relative, without '..' or empty parts`,
      );
    }
  });

  it('parentDirs lists each directory above the paths once, parents first', () => {
    expect(parentDirs(['usr/lib/m/a.ko', 'usr/lib/m/b/c.ko', 'usr/lib/x'])).toEqual([
      'usr',
      'usr/lib',
      'usr/lib/m',
      'usr/lib/m/b',
    ]);
  });
});

describe('moduleClosure', () => {
  it('adds each wanted module after its dependencies, each file once', () => {
    const c = moduleClosure(MODULES_DEP, undefined, VIRTIO_DRIVERS);
    expect(c).toEqual({
      files: [
        'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
        'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
        'kernel/drivers/virtio/virtio_ring.ko',
        'kernel/drivers/virtio/virtio.ko',
        'kernel/drivers/virtio/virtio_pci.ko',
        'kernel/drivers/block/virtio_blk.ko',
        'kernel/drivers/scsi/scsi_common.ko',
        'kernel/drivers/scsi/scsi_mod.ko',
        'kernel/drivers/scsi/virtio_scsi.ko',
        'kernel/net/core/failover.ko',
        'kernel/drivers/net/net_failover.ko',
        'kernel/drivers/net/virtio_net.ko',
        'kernel/drivers/char/virtio_console.ko',
      ],
      builtin: [],
      missing: [],
      compressed: false,
    });
  });

  it('built-in modules add nothing, unknown ones are missing, - and _ are one', () => {
    const dep = MODULES_DEP.replace(/^kernel\/drivers\/block\/virtio_blk.*\n/m, '');
    const c = moduleClosure(dep, 'kernel/drivers/block/virtio_blk.ko\n', [
      'virtio_blk',
      'virtio_rng',
      'no_such_driver',
    ]);
    expect(c.files).toEqual([
      'kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/char/hw_random/virtio-rng.ko',
    ]);
    expect(c.builtin).toEqual(['virtio_blk']);
    expect(c.missing).toEqual(['no_such_driver']);
  });

  it('notices compressed module files', () => {
    const dep =
      'kernel/drivers/virtio/virtio.ko.xz:\nkernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz\n';
    expect(moduleClosure(dep, undefined, ['virtio_blk'])).toMatchObject({
      files: ['kernel/drivers/virtio/virtio.ko.xz', 'kernel/drivers/block/virtio_blk.ko.xz'],
      compressed: true,
    });
    expect(moduleName('kernel/a/virtio-rng.ko.zst')).toBe('virtio_rng');
  });
});

describe('the appended archive', () => {
  it('names members under the prefix, with every directory above them', () => {
    const a = modulesArchive('usr/lib/modules/6.1.0-28-amd64', [
      { name: 'kernel/drivers/block/virtio_blk.ko', data: Buffer.from('blk') },
      { name: 'modules.dep', data: Buffer.from(MODULES_DEP) },
    ]);
    const names = [...a.toString('latin1').matchAll(/070701[0-9A-F]{104}([^\0]+)\0/g)].map(
      (m) => m[1],
    );
    expect(names).toEqual([
      'usr',
      'usr/lib',
      'usr/lib/modules',
      'usr/lib/modules/6.1.0-28-amd64',
      'usr/lib/modules/6.1.0-28-amd64/kernel',
      'usr/lib/modules/6.1.0-28-amd64/kernel/drivers',
      'usr/lib/modules/6.1.0-28-amd64/kernel/drivers/block',
      'usr/lib/modules/6.1.0-28-amd64/kernel/drivers/block/virtio_blk.ko',
      'usr/lib/modules/6.1.0-28-amd64/modules.dep',
      'TRAILER!!!',
    ]);
  });

  it('keeps the image whole, pads it to 4 bytes, then one gzip member holding the archive', () => {
    const image = Buffer.from('(\xb5/\xfd zstd image', 'latin1');
    const archive = newcArchive([{ path: 'x', kind: 'file', perm: 0o644, data: Buffer.from('y') }]);
    const out = appendArchive(image, archive);
    expect(out.subarray(0, image.length)).toEqual(image);
    const start = image.length + ((4 - (image.length % 4)) % 4);
    expect(out.subarray(image.length, start)).toEqual(Buffer.alloc(start - image.length));
    expect(out.subarray(start, start + 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gunzipSync(out.subarray(start))).toEqual(archive);
  });
});

describe('GuestOS: extend or rebuild the initramfs', () => {
  const debian = new DebianGuestOs();
  const files = { '/lib/modules/6.1.0-28-amd64/modules.dep': MODULES_DEP };

  it('extends the image with the closure of the drivers (golden plan text)', async () => {
    const ctx = conversionContext(vmwareSource(), debianInspection());
    const plan = new Plan(new MemGuest(files));
    await debian.prepareBootable(plan, ctx, VIRTIO_DRIVERS);
    expect(plan.actions.map((a) => a.kind)).toEqual([
      'copy-file',
      'extend-initramfs',
      'rewrite-devices',
    ]);
    await expect(plan.actions.map((a) => describeAction(a)).join('\n')).toMatchFileSnapshot(
      path.join(GOLDEN, 'extend-plan.txt'),
    );
  });

  it('dracut images are extended the same way', async () => {
    const ctx = conversionContext(vmwareSource(), debianInspection({ initramfsTool: 'dracut' }));
    const plan = new Plan(new MemGuest(files));
    await debian.prepareBootable(plan, ctx, VIRTIO_DRIVERS);
    expect(plan.actions[1]).toMatchObject({
      kind: 'extend-initramfs',
      initrd: '/boot/initrd.img-6.1.0-28-amd64',
      kernel: '6.1.0-28-amd64',
    });
  });

  it('rebuilds with the guest tool with --initramfs rebuild, compressed modules, a missing driver or no modules.dep', async () => {
    const rebuilds = async (guestFiles: Record<string, string>, o = {}) => {
      const ctx = conversionContext(vmwareSource(), debianInspection(), o);
      const plan = new Plan(new MemGuest(guestFiles));
      await debian.prepareBootable(plan, ctx, VIRTIO_DRIVERS);
      return plan.actions.map((a) => (a.kind === 'run' ? a.argv.join(' ') : a.kind));
    };
    const rebuilt = ['copy-file', 'update-initramfs -u -k 6.1.0-28-amd64', 'rewrite-devices'];
    expect(await rebuilds(files, { initramfs: 'rebuild' })).toEqual(rebuilt);
    expect(
      await rebuilds({
        '/lib/modules/6.1.0-28-amd64/modules.dep': MODULES_DEP.replaceAll('.ko', '.ko.xz'),
      }),
    ).toEqual(rebuilt);
    expect(
      await rebuilds({
        '/lib/modules/6.1.0-28-amd64/modules.dep': MODULES_DEP.replace(/^.*virtio_net.*\n/m, ''),
      }),
    ).toEqual(rebuilt);
    expect(await rebuilds({})).toEqual(rebuilt);
  });

  it('drivers built into the kernel: nothing to add, nothing to rebuild, a note says so', async () => {
    const ctx = conversionContext(vmwareSource(), debianInspection());
    const plan = new Plan(
      new MemGuest({
        '/lib/modules/6.1.0-28-amd64/modules.dep': '',
        '/lib/modules/6.1.0-28-amd64/modules.builtin': VIRTIO_DRIVERS.map(
          (d) => `kernel/drivers/${d}.ko`,
        ).join('\n'),
      }),
    );
    await debian.prepareBootable(plan, ctx, VIRTIO_DRIVERS);
    expect(plan.actions.map((a) => a.kind)).toEqual(['copy-file', 'rewrite-devices']);
    expect(plan.notes).toEqual([
      `6.1.0-28-amd64: ${VIRTIO_DRIVERS.join(', ')} are built into the kernel`,
    ]);
  });
});
