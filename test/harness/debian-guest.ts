/**
 * The Debian 12 guest fixtures of the conversion tests: a realistic VMware-exported Debian
 * guest (debootstrap, open-vm-tools, an initramfs with VMware-era drivers only, grub and fstab
 * on /dev/sda1) and variants derived from it by editing files in the image. The builder is
 * test/fixtures/debian-guest/ (build-base.sh, variant.sh, export.sh, files/).
 *
 * Built on first use and cached outside the repo, keyed by the builder's files:
 *   /var/tmp/v2v-load-fixtures/debian12-<master key>/master/base.qcow2
 *   /var/tmp/v2v-load-fixtures/debian12-<master key>/<variant>-<export key>/
 * The master key hashes the files the master image is built from (build-base.sh and the guest
 * files it installs); an export key hashes the master key and export.sh (the base) or all
 * the builder's files (a variant), so editing export.sh or a variant rebuilds only exports,
 * not the debootstrap. The first
 * build takes minutes (debootstrap, then libguestfs under TCG); later calls return at once.
 * Builds of the same directory by several processes are serialised by a lock file.
 *
 * ```ts
 * const guest = await debianGuest('static-ip');
 * // guest.vmx, guest.vmdk, guest.ova (VMware variants) or guest.libvirtXml + guest.img (xen-pv)
 * ```
 *
 * Never write the cached files: copy them, or boot them through an overlay (boot.ts does).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

const BUILDER = path.resolve(import.meta.dirname, '../fixtures/debian-guest');
const FIXTURES = '/var/tmp/v2v-load-fixtures';
const BUILDER_VERSION = 'debian12-guest-1';
/** The files of the builder that shape the master image (the rest shape exports, variants). */
const MASTER_INPUTS = [
  'build-base.sh',
  'files/fstab',
  'files/grub',
  'files/interfaces',
  'files/initramfs-modules',
  'files/v2vload-markers.sh',
  'files/v2vload-markers.service',
];

/** The fixture guests. */
export type DebianVariant = 'base' | 'uuid' | 'static-ip' | 'dracut' | 'xen-pv';
export const DEBIAN_VARIANTS: readonly DebianVariant[] = [
  'base',
  'uuid',
  'static-ip',
  'dracut',
  'xen-pv',
];

/** What the guest shows once booted (its markers), before any conversion. */
export interface DebianGuestExpectations {
  /** `root=` on the kernel command line and the device of / in /etc/fstab. */
  root: string;
  /** The serial console of the kernel command line and the getty. */
  console: 'ttyS0' | 'hvc0';
  /** The initramfs generator installed. */
  initramfs: 'initramfs-tools' | 'dracut';
  /** Whether open-vm-tools is installed. */
  vmtools: 'present' | 'absent';
  /** The configured interface (on VMware and on boot.ts's 'vmware' hardware). */
  iface: string;
  /** Its configured static IPv4 address, when it has one (else DHCP). */
  staticIpv4?: string;
}

/** One fixture guest, all paths absolute, inside the cache (read-only for tests). */
export interface DebianGuest {
  variant: DebianVariant;
  /** The VM name in the metadata, also the base name of the files. */
  name: string;
  /** The hypervisor it was exported from. */
  hypervisor: 'vmware' | 'xen';
  /** The variant's cache directory. */
  dir: string;
  /** The MAC address of its NIC in the metadata (boot with it to keep the guest's view). */
  mac: string;
  /** The disk to boot directly: the .vmdk (VMware) or the raw .img (Xen). */
  disk: string;
  /** VMware: monolithicSparse VMDK referenced by the .vmx. */
  vmdk?: string;
  /** VMware: .vmx (pvscsi in slot 160, vmxnet3 in slot 192, BIOS, 1024 MiB, debian12-64). */
  vmx?: string;
  /** Base only: .ova (NAME.ovf, NAME.mf, NAME-disk1.vmdk streamOptimized). */
  ova?: string;
  /** Xen: the raw disk named in the domain XML. */
  img?: string;
  /** Xen: libvirt Xen PV domain XML (pygrub, xvda, bridge xenbr0). */
  libvirtXml?: string;
  /** The qcow2 master the base export and the variants are made from (shared by all). */
  master: string;
  /** What the guest itself holds before conversion. */
  expect: DebianGuestExpectations;
}

const VMWARE_MAC = '00:0c:29:5e:a1:01';
const XEN_MAC = '00:16:3e:5e:a1:01';

const NAMES: Record<DebianVariant, string> = {
  base: 'debian12-vmw',
  uuid: 'debian12-vmw-uuid',
  'static-ip': 'debian12-vmw-static',
  dracut: 'debian12-vmw-dracut',
  'xen-pv': 'debian12-xenpv',
};

function expectations(variant: DebianVariant): DebianGuestExpectations {
  const common = {
    root: '/dev/sda1',
    console: 'ttyS0',
    initramfs: 'initramfs-tools',
    vmtools: 'present',
    iface: 'ens192',
  } as const;
  switch (variant) {
    case 'base':
      return { ...common };
    case 'uuid':
      return { ...common, root: 'UUID' };
    case 'static-ip':
      return { ...common, staticIpv4: '10.0.2.15/24' };
    case 'dracut':
      return { ...common, initramfs: 'dracut' };
    case 'xen-pv':
      return { ...common, root: '/dev/xvda1', console: 'hvc0', vmtools: 'absent', iface: 'enX0' };
  }
}

async function hashFiles(seed: string, rels: readonly string[]): Promise<string> {
  const h = createHash('sha256').update(seed);
  for (const rel of [...rels].sort()) {
    h.update(`\0${rel}\0`).update(await fs.readFile(path.join(BUILDER, rel)));
  }
  return h.digest('hex').slice(0, 24);
}

async function allBuilderFiles(): Promise<string[]> {
  const files = await fs.readdir(path.join(BUILDER, 'files'));
  return ['build-base.sh', 'variant.sh', 'export.sh', ...files.map((f) => `files/${f}`)];
}

/** The cache directories of the master image and of `variant` (nothing is built). */
export async function debianGuestDirs(
  variant: DebianVariant,
): Promise<{ root: string; master: string; dir: string }> {
  const masterKey = await hashFiles(BUILDER_VERSION, MASTER_INPUTS);
  const root = path.join(FIXTURES, `debian12-${masterKey}`);
  // the base export depends on export.sh only; a variant on all the builder's files
  const inputs = variant === 'base' ? ['export.sh'] : await allBuilderFiles();
  const key = await hashFiles(`${masterKey}\0${variant}`, inputs);
  return { root, master: path.join(root, 'master'), dir: path.join(root, `${variant}-${key}`) };
}

function describe(variant: DebianVariant, dir: string, master: string): DebianGuest {
  const name = NAMES[variant];
  const at = (f: string) => path.join(dir, f);
  const common = { variant, name, dir, master, expect: expectations(variant) };
  if (variant === 'xen-pv') {
    return {
      ...common,
      hypervisor: 'xen',
      mac: XEN_MAC,
      disk: at(`${name}.img`),
      img: at(`${name}.img`),
      libvirtXml: at(`${name}.xml`),
    };
  }
  return {
    ...common,
    hypervisor: 'vmware',
    mac: VMWARE_MAC,
    disk: at(`${name}.vmdk`),
    vmdk: at(`${name}.vmdk`),
    vmx: at(`${name}.vmx`),
    ...(variant === 'base' ? { ova: at(`${name}.ova`) } : {}),
  };
}

/** Runs a builder script, its output appended to `log`; throws with the log's tail. */
async function run(script: string, args: string[], log: string): Promise<void> {
  const fh = await fs.open(log, 'a');
  try {
    const code = await new Promise<number | string>((resolve) => {
      const child = spawn('bash', [path.join(BUILDER, script), ...args], {
        stdio: ['ignore', fh.fd, fh.fd],
        env: {
          ...process.env,
          LIBGUESTFS_BACKEND: 'direct',
          LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg',
        },
      });
      child.on('error', (e) => resolve(e.message));
      child.on('exit', (c, s) => resolve(s ?? c ?? 1));
    });
    if (code !== 0) {
      const tail = (await fs.readFile(log, 'utf8')).split('\n').slice(-40).join('\n');
      throw new Error(
        `debian guest fixture: ${script} ${args.join(' ')} failed (${code}):\n${tail}`,
      );
    }
  } finally {
    await fh.close();
  }
}

function alive(pid: number): Promise<boolean> {
  // a killed process may linger as a zombie: look at its state, not at kill -0
  return fs
    .readFile(`/proc/${pid}/stat`, 'utf8')
    .then((s) => !/^\d+ \(.*\) [ZX]/.test(s))
    .catch(() => false);
}

/** Holds `lock` (a file holding the owner's pid) while `fn` runs; waits for a live owner. */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const fh = await fs.open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number((await fs.readFile(lock, 'utf8').catch(() => '')).trim());
      if (owner && (await alive(owner))) {
        await new Promise((r) => setTimeout(r, 2000));
      } else {
        await fs.rm(lock, { force: true }); // stale
      }
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Builds `dir` with `build(work)` into a temp dir renamed into place when complete. */
async function buildInto(dir: string, build: (work: string) => Promise<void>): Promise<void> {
  const done = path.join(dir, 'DONE');
  if (await exists(done)) return;
  await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
  await withLock(`${dir}.lock`, async () => {
    if (await exists(done)) return; // built by another process meanwhile
    await fs.rm(dir, { recursive: true, force: true });
    const work = `${dir}.build`;
    await fs.rm(work, { recursive: true, force: true });
    await fs.mkdir(work, { recursive: true, mode: 0o755 });
    const started = Date.now();
    await build(work);
    for (const f of await fs.readdir(work, { withFileTypes: true })) {
      if (f.isFile()) await fs.chmod(path.join(work, f.name), 0o644);
    }
    await fs.chmod(work, 0o755);
    await fs.writeFile(
      path.join(work, 'DONE'),
      `${JSON.stringify({ seconds: (Date.now() - started) / 1000, at: new Date().toISOString() })}\n`,
    );
    await fs.rename(work, dir);
  });
}

/**
 * Returns the fixture guest `variant` (default: the base VMware guest), building it and the
 * base first when the cache lacks them. Needs root, network access to deb.debian.org for the
 * base, and minutes the first time: call it from a `beforeAll` with a long timeout.
 */
export async function debianGuest(variant: DebianVariant = 'base'): Promise<DebianGuest> {
  await fs.mkdir(FIXTURES, { recursive: true, mode: 0o755 });
  await fs.chmod(FIXTURES, 0o755);
  const { master, dir } = await debianGuestDirs(variant);
  await buildInto(master, async (work) => {
    await run('build-base.sh', [work], path.join(work, 'build.log'));
  });
  const base = path.join(master, 'base.qcow2');
  const mac = variant === 'xen-pv' ? XEN_MAC : VMWARE_MAC;
  await buildInto(dir, async (work) => {
    const log = path.join(work, 'build.log');
    if (variant === 'base') {
      await run('export.sh', ['vmware+ova', base, work, NAMES.base, mac], log);
      return;
    }
    await run('variant.sh', [variant, base, work, NAMES[variant], mac], log);
    if (variant === 'xen-pv') {
      // the domain XML names its disk by absolute path: the directory's final one
      const xml = path.join(work, `${NAMES[variant]}.xml`);
      await fs.writeFile(xml, (await fs.readFile(xml, 'utf8')).replaceAll(work, dir));
    }
  });
  return describe(variant, dir, base);
}
