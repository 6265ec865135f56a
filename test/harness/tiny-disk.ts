/**
 * A small BOOTABLE DISK for provisioning tests: the tiny guest (tiny-guest.ts: the host kernel
 * + a tiny initrd whose /init prints markers on ttyS0 and powers off on the ACPI button) on a
 * FAT file system with SYSLINUX in its boot sector (a partitionless "superfloppy" disk, which
 * SeaBIOS boots like any disk). Built without loop devices or libguestfs: mkfs.vfat on a file,
 * mcopy, `syslinux --install`, then qemu-img convert to qcow2. Cached under
 * /var/tmp/v2v-load-fixtures/<sha256 of the inputs>/tiny-disk.qcow2 (0644, dirs 0755).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildTinyGuest } from './tiny-guest.js';

const exec = promisify(execFile);
const FIXTURES = '/var/tmp/v2v-load-fixtures';
const BUILDER_VERSION = 'tiny-disk-1';
/** The kernel command line SYSLINUX gives the tiny guest. */
export const TINY_DISK_CMDLINE = 'console=ttyS0 panic=-1 quiet loglevel=1';

const SYSLINUX_CFG = [
  'DEFAULT tiny',
  'PROMPT 0',
  'TIMEOUT 0',
  'LABEL tiny',
  '  KERNEL vmlinuz',
  '  INITRD initrd',
  `  APPEND ${TINY_DISK_CMDLINE}`,
  '',
].join('\n');

/** Builds (or finds in the cache) the tiny bootable disk; returns the qcow2's path. */
export async function buildTinyDisk(): Promise<string> {
  const guest = await buildTinyGuest();
  const { stdout: syslinuxVersion } = await exec('syslinux', ['--version']).catch((e) => ({
    stdout: String((e as { stderr?: string }).stderr ?? ''),
  }));
  const hash = createHash('sha256')
    .update(BUILDER_VERSION)
    .update(guest.dir)
    .update(SYSLINUX_CFG)
    .update(syslinuxVersion)
    .digest('hex')
    .slice(0, 32);
  const dir = path.join(FIXTURES, hash);
  const disk = path.join(dir, 'tiny-disk.qcow2');
  try {
    await fs.access(disk);
    return disk;
  } catch {
    // build below
  }
  await fs.mkdir(FIXTURES, { recursive: true, mode: 0o755 });
  const work = await fs.mkdtemp(path.join(FIXTURES, 'build-disk-'));
  try {
    const raw = path.join(work, 'disk.raw');
    const cfg = path.join(work, 'syslinux.cfg');
    await fs.writeFile(cfg, SYSLINUX_CFG);
    await fs.writeFile(raw, Buffer.alloc(0));
    await fs.truncate(raw, 24 * 1024 * 1024);
    await exec('mkfs.vfat', ['-n', 'TINYDISK', raw]);
    for (const [from, to] of [
      [guest.kernel, 'vmlinuz'],
      [guest.initrd, 'initrd'],
      [cfg, 'syslinux.cfg'],
    ] as const) {
      await exec('mcopy', ['-i', raw, from, `::${to}`]);
    }
    await exec('syslinux', ['--install', raw]);
    await exec('qemu-img', [
      'convert',
      '-q',
      '-f',
      'raw',
      '-O',
      'qcow2',
      raw,
      path.join(work, 'tiny-disk.qcow2'),
    ]);
    await fs.rm(raw);
    await fs.rm(cfg);
    await fs.chmod(work, 0o755);
    await fs.chmod(path.join(work, 'tiny-disk.qcow2'), 0o644);
    try {
      await fs.rename(work, dir);
    } catch {
      await fs.rm(work, { recursive: true, force: true }); // another run built it first
    }
    return disk;
  } catch (e) {
    await fs.rm(work, { recursive: true, force: true });
    throw e;
  }
}
