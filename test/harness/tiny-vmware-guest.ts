/**
 * A tiny guest in VMware's form that the conversion pipeline accepts and converts in seconds:
 * for the import, batch and kill tests and the batch benchmark, where the subject is the
 * orchestration, not the conversion (the realistic Debian guest, debian-guest.ts, costs minutes
 * under TCG).
 *
 * The disk (64 MiB, MBR, one ext2 partition, extlinux) holds what libguestfs inspection calls a
 * Debian 12 guest: /etc/os-release, /etc/debian_version, /etc/fstab on /dev/sda1, a dpkg
 * database (initramfs-tools, a kernel package), the host's kernel in /boot with its
 * modules.dep (which lists virtio), an initramfs with VMware-era modules in
 * /etc/initramfs-tools/modules, and extlinux.conf with root=/dev/sda1. Its initramfs is a
 * static /init (test/fixtures/tiny-vmware/init.c) that prints a login prompt on ttyS0 and
 * powers off on the ACPI button; its `update-initramfs` is a static program that regenerates
 * the initramfs from a template in the guest. Exported as a monolithicSparse VMDK + .vmx
 * (pvscsi, no NIC, BIOS, 256 MiB).
 *
 * Built once (one libguestfs launch) and cached under
 * /var/tmp/v2v-load-fixtures/tiny-vmware-<hash of builder, kernel, modules>/, 0755 so QEMU reads
 * it. Never write the cached files.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const BUILDER = path.resolve(import.meta.dirname, '../fixtures/tiny-vmware');
const FIXTURES = '/var/tmp/v2v-load-fixtures';
const BUILDER_VERSION = 'tiny-vmware-2';
const MBR = '/usr/lib/EXTLINUX/mbr.bin';

export const TINY_VMW_NAME = 'v2vtiny';

/** What the tiny guest's console shows once booted (a login prompt). */
export const TINY_VMW_LOGIN = 'v2vtiny login: ';

export interface TinyVmwareGuest {
  name: string;
  dir: string;
  vmx: string;
  vmdk: string;
  /** The kernel release inside (the host's). */
  kernel: string;
}

async function newestKernel(): Promise<string> {
  const names = (await fs.readdir('/boot')).filter((n) => n.startsWith('vmlinuz-')).sort();
  const last = names.at(-1);
  if (!last) throw new Error('tiny vmware guest: no /boot/vmlinuz-* (install linux-image-amd64)');
  return last.slice('vmlinuz-'.length);
}

const exists = (p: string) =>
  fs.access(p).then(
    () => true,
    () => false,
  );

function vmxText(name: string, vmdk = `${name}.vmdk`): string {
  const uuid = createHash('sha256').update(name).digest('hex');
  const bytes = uuid.slice(0, 32).replace(/(..)/g, '$1 ').trim();
  const bios = `${bytes.slice(0, 23)}-${bytes.slice(24)}`;
  return [
    '.encoding = "UTF-8"',
    'config.version = "8"',
    'virtualHW.version = "19"',
    `displayName = "${name}"`,
    'guestOS = "debian12-64"',
    'firmware = "bios"',
    'memsize = "256"',
    'numvcpus = "1"',
    'scsi0.present = "TRUE"',
    'scsi0.virtualDev = "pvscsi"',
    'scsi0.pciSlotNumber = "160"',
    'scsi0:0.present = "TRUE"',
    'scsi0:0.deviceType = "scsi-hardDisk"',
    `scsi0:0.fileName = "${vmdk}"`,
    `uuid.bios = "${bios}"`,
    '',
  ].join('\n');
}

async function buildTree(root: string, release: string, initrd: string, stub: string) {
  const dirs = [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'usr/share/v2vtiny',
    'lib',
    `lib/modules/${release}`,
    'etc/initramfs-tools',
    'etc/apt',
    'var/lib/dpkg',
    'boot/extlinux',
    'dev',
    'proc',
    'sys',
    'tmp',
    'root',
    'run',
  ];
  for (const d of dirs) await fs.mkdir(path.join(root, d), { recursive: true });
  const w = (rel: string, text: string) => fs.writeFile(path.join(root, rel), text);
  await fs.copyFile(`/boot/vmlinuz-${release}`, path.join(root, `boot/vmlinuz-${release}`));
  await fs.copyFile(initrd, path.join(root, `boot/initrd.img-${release}`));
  await fs.copyFile(initrd, path.join(root, 'usr/share/v2vtiny/initrd.cpio'));
  // The kernel's module index, and the virtio drivers with what they depend on (the files a
  // conversion reads to put them into the initramfs), as a real guest has them.
  const kdir = `/lib/modules/${release}`;
  const gdir = path.join(root, `lib/modules/${release}`);
  for (const f of await fs.readdir(kdir)) {
    if (f.startsWith('modules.')) await fs.copyFile(`${kdir}/${f}`, path.join(gdir, f));
  }
  for (const rel of await virtioClosure(kdir)) {
    await fs.mkdir(path.join(gdir, path.dirname(rel)), { recursive: true });
    await fs.copyFile(`${kdir}/${rel}`, path.join(gdir, rel));
  }
  for (const p of ['usr/sbin/update-initramfs', 'bin/sh', 'bin/ls', 'sbin/init']) {
    await fs.copyFile(stub, path.join(root, p));
    await fs.chmod(path.join(root, p), 0o755);
  }
  await w(
    'etc/os-release',
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
  );
  await w('etc/debian_version', '12.8\n');
  await w('etc/hostname', `${TINY_VMW_NAME}\n`);
  await w(
    'etc/fstab',
    '# <file system> <mount point> <type> <options> <dump> <pass>\n/dev/sda1 / ext2 defaults 0 1\n',
  );
  await w(
    'etc/initramfs-tools/modules',
    '# VMware-era drivers only\nvmw_pvscsi\nmptspi\nata_piix\n',
  );
  await w('etc/apt/sources.list', 'deb http://deb.debian.org/debian bookworm main\n');
  const pkg = (name: string, version: string) =>
    `Package: ${name}\nStatus: install ok installed\nPriority: optional\nSection: misc\nInstalled-Size: 1\nMaintainer: v2v-load tests\nArchitecture: amd64\nVersion: ${version}\nDescription: ${name}\n`;
  await w(
    'var/lib/dpkg/status',
    [
      pkg('base-files', '12.4+deb12u8'),
      pkg('initramfs-tools', '0.142'),
      pkg(`linux-image-${release}`, release),
      pkg('extlinux', '3:6.04~git20190206.bf6db5b4+dfsg1-3'),
    ].join('\n'),
  );
  await w(
    'boot/extlinux/extlinux.conf',
    [
      'DEFAULT linux',
      'PROMPT 0',
      'TIMEOUT 1',
      'LABEL linux',
      `  LINUX /boot/vmlinuz-${release}`,
      `  INITRD /boot/initrd.img-${release}`,
      '  APPEND root=/dev/sda1 console=ttyS0 panic=-1 quiet loglevel=1',
      '',
    ].join('\n'),
  );
}

/** The module files (relative to the kernel's directory) of the virtio drivers and their deps. */
async function virtioClosure(kdir: string): Promise<string[]> {
  const deps = new Map<string, string[]>();
  for (const line of (await fs.readFile(`${kdir}/modules.dep`, 'utf8')).split('\n')) {
    const [file, rest] = line.split(':');
    if (file) deps.set(file.trim(), (rest ?? '').trim().split(/\s+/).filter(Boolean));
  }
  const name = (f: string) =>
    path
      .basename(f)
      .replace(/\.ko(\.\w+)?$/, '')
      .replace(/-/g, '_');
  const wanted = ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'virtio_net', 'virtio_console'];
  const out = new Set<string>();
  const add = (f: string) => {
    if (out.has(f)) return;
    out.add(f);
    for (const d of deps.get(f) ?? []) add(d);
  };
  for (const f of deps.keys()) if (wanted.includes(name(f))) add(f);
  return [...out];
}

async function cpio(root: string, entries: string[], out: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      'cpio',
      ['--quiet', '-o', '-H', 'newc', '-O', out],
      { cwd: root },
      (e) => (e ? reject(e) : resolve()),
    );
    child.stdin?.end(`${entries.join('\n')}\n`);
  });
}

/** The tiny VMware guest, built on first use (one libguestfs launch, ~1 min under TCG). */
export async function tinyVmwareGuest(): Promise<TinyVmwareGuest> {
  const release = await newestKernel();
  const modules = [
    `/lib/modules/${release}/kernel/drivers/acpi/button.ko`,
    `/lib/modules/${release}/kernel/drivers/input/evdev.ko`,
  ];
  const hash = createHash('sha256').update(BUILDER_VERSION);
  for (const f of [
    path.join(BUILDER, 'init.c'),
    path.join(BUILDER, 'update-initramfs.c'),
    import.meta.filename,
    `/boot/vmlinuz-${release}`,
    ...modules,
  ]) {
    hash.update(f).update(await fs.readFile(f));
  }
  const dir = path.join(FIXTURES, `tiny-vmware-${hash.digest('hex').slice(0, 24)}`);
  const guest: TinyVmwareGuest = {
    name: TINY_VMW_NAME,
    dir,
    vmx: path.join(dir, `${TINY_VMW_NAME}.vmx`),
    vmdk: path.join(dir, `${TINY_VMW_NAME}.vmdk`),
    kernel: release,
  };
  if (await exists(path.join(dir, 'DONE'))) return guest;
  await fs.mkdir(FIXTURES, { recursive: true, mode: 0o755 });
  await fs.chmod(FIXTURES, 0o755);
  const work = await fs.mkdtemp(path.join(FIXTURES, 'tiny-vmware-build-'));
  try {
    const initRoot = path.join(work, 'initrd');
    for (const d of ['proc', 'sys', 'dev', 'modules']) {
      await fs.mkdir(path.join(initRoot, d), { recursive: true });
    }
    await exec('gcc', [
      '-static',
      '-Os',
      '-o',
      path.join(initRoot, 'init'),
      path.join(BUILDER, 'init.c'),
    ]);
    for (const m of modules) await fs.copyFile(m, path.join(initRoot, 'modules', path.basename(m)));
    const initrd = path.join(work, 'initrd.cpio');
    await cpio(
      initRoot,
      [
        '.',
        'init',
        'proc',
        'sys',
        'dev',
        'modules',
        ...modules.map((m) => `modules/${path.basename(m)}`),
      ],
      initrd,
    );
    const stub = path.join(work, 'update-initramfs');
    await exec('gcc', ['-static', '-Os', '-o', stub, path.join(BUILDER, 'update-initramfs.c')]);
    const root = path.join(work, 'root');
    await buildTree(root, release, initrd, stub);
    const tar = path.join(work, 'root.tar');
    await exec('tar', ['--owner=0', '--group=0', '--numeric-owner', '-cf', tar, '-C', root, '.']);
    const raw = path.join(work, 'disk.raw');
    await exec(
      'guestfish',
      [
        '--',
        'sparse',
        raw,
        '64M',
        ':',
        'run',
        ':',
        'part-disk',
        '/dev/sda',
        'mbr',
        ':',
        'part-set-bootable',
        '/dev/sda',
        '1',
        'true',
        ':',
        'mkfs',
        'ext2',
        '/dev/sda1',
        ':',
        'mount',
        '/dev/sda1',
        '/',
        ':',
        'tar-in',
        tar,
        '/',
        ':',
        'extlinux',
        '/boot/extlinux',
        ':',
        'umount-all',
      ],
      {
        env: {
          ...process.env,
          LIBGUESTFS_BACKEND: 'direct',
          LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg',
        },
        timeout: 600_000,
      },
    );
    // extlinux's boot code in the MBR (the partition table after byte 440 is kept)
    await exec('dd', [
      `if=${MBR}`,
      `of=${raw}`,
      'bs=440',
      'count=1',
      'conv=notrunc',
      'status=none',
    ]);
    const out = path.join(work, 'out');
    await fs.mkdir(out, { mode: 0o755 });
    await exec('qemu-img', [
      'convert',
      '-O',
      'vmdk',
      '-o',
      'subformat=monolithicSparse',
      raw,
      path.join(out, `${TINY_VMW_NAME}.vmdk`),
    ]);
    await fs.writeFile(path.join(out, `${TINY_VMW_NAME}.vmx`), vmxText(TINY_VMW_NAME));
    for (const f of await fs.readdir(out)) await fs.chmod(path.join(out, f), 0o644);
    await fs.writeFile(path.join(out, 'DONE'), `${new Date().toISOString()}\n`);
    await fs.chmod(out, 0o755);
    try {
      await fs.rename(out, dir);
    } catch {
      // built by another process meanwhile
    }
    return guest;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/**
 * `n` VMware guests made of the one tiny guest, for batches: `DIR/NAME.vmx` each with its own
 * display name and BIOS UUID, all naming the cached VMDK by absolute path (only ever read).
 */
export async function tinyVmwareCopies(
  guest: TinyVmwareGuest,
  dir: string,
  names: readonly string[],
): Promise<string[]> {
  const out: string[] = [];
  for (const name of names) {
    const vmx = path.join(dir, `${name}.vmx`);
    await fs.writeFile(vmx, vmxText(name, guest.vmdk));
    out.push(vmx);
  }
  return out;
}
