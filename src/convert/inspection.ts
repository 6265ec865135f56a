/**
 * What inspecting the guest found: the facts every conversion module decides from. Built once
 * per conversion from the mounted guest (inspectGuest) or, in unit tests, by hand.
 */
import type { Guest } from '../guestfs/guest.js';
import { GuestfsError } from '../guestfs/session.js';

export const GUEST_TYPES = ['linux', 'windows', 'unknown'] as const;
export type GuestType = (typeof GUEST_TYPES)[number];

export const OS_FAMILIES = ['debian', 'rhel', 'suse', 'windows', 'other'] as const;
export type OsFamily = (typeof OS_FAMILIES)[number];

export const INITRAMFS_TOOLS = ['initramfs-tools', 'dracut', 'mkinitrd', 'none'] as const;
export type InitramfsTool = (typeof INITRAMFS_TOOLS)[number];

export const BOOTLOADERS = ['grub2', 'grub-legacy', 'extlinux', 'unknown'] as const;
export type BootloaderKind = (typeof BOOTLOADERS)[number];

/** The virtio drivers a kernel has, as modules or built in. */
export interface VirtioSupport {
  blk: boolean;
  scsi: boolean;
  net: boolean;
  pci: boolean;
  console: boolean;
  rng: boolean;
  balloon: boolean;
}

export interface KernelInfo {
  /** e.g. `6.1.0-28-amd64` */
  version: string;
  /** e.g. `/boot/vmlinuz-6.1.0-28-amd64`. */
  vmlinuz: string;
  /** The initramfs the guest boots it with, when there is one. */
  initrd?: string | undefined;
  virtio: VirtioSupport;
  /** A kernel that only boots as a Xen PV domain (`-xen`, `-xenU` flavours of old distros). */
  xenOnly: boolean;
}

export interface Bootloader {
  kind: BootloaderKind;
  /** The generated configuration file, e.g. /boot/grub/grub.cfg. */
  config?: string | undefined;
}

/** What inspection finds of a Windows guest (paths as the guest's file system spells them). */
export interface WindowsInfo {
  /** e.g. /Windows */
  systemRoot: string;
  /** e.g. /Windows/System32/config/SYSTEM */
  systemHive: string;
  softwareHive: string;
  /** Client or Server. */
  productVariant: string;
}

export interface GuestInspection {
  /** The root file system device as the appliance names it. */
  root: string;
  type: GuestType;
  /** libguestfs's distro word: debian, ubuntu, rhel, centos, fedora, windows, ... */
  distro: string;
  family: OsFamily;
  majorVersion: number;
  minorVersion: number;
  productName: string;
  arch: string;
  /** deb, rpm, ... */
  packageFormat: string;
  /** apt, yum, dnf, zypper, ... */
  packageManager: string;
  /** Mount point → appliance device. */
  mountpoints: Record<string, string>;
  /** Installed package names. */
  packages: string[];
  kernels: KernelInfo[];
  initramfsTool: InitramfsTool;
  bootloader: Bootloader;
  /** Windows guests only. */
  windows?: WindowsInfo | undefined;
}

/** The distro families by libguestfs distro word. */
export function familyOf(type: GuestType, distro: string): OsFamily {
  if (type === 'windows') return 'windows';
  if (['debian', 'ubuntu', 'linuxmint', 'kalilinux'].includes(distro)) return 'debian';
  if (
    [
      'rhel',
      'centos',
      'fedora',
      'rocky',
      'almalinux',
      'oraclelinux',
      'scientificlinux',
      'redhat-based',
      'circle',
    ].includes(distro)
  ) {
    return 'rhel';
  }
  if (['sles', 'suse-based', 'opensuse'].includes(distro)) return 'suse';
  return 'other';
}

/** Module names (without .ko and compression suffix) listed in modules.dep / modules.builtin. */
export function moduleNames(listing: string): Set<string> {
  const names = new Set<string>();
  for (const line of listing.split('\n')) {
    const file = line.split(':', 1)[0]?.trim();
    if (!file) continue;
    const base = file.slice(file.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|zst|gz))?$/, '');
    names.add(base.replace(/-/g, '_'));
  }
  return names;
}

/** Which virtio drivers a kernel has, from its modules.dep and modules.builtin. */
export function virtioSupport(modulesDep: string, modulesBuiltin: string): VirtioSupport {
  const all = moduleNames(`${modulesDep}\n${modulesBuiltin}`);
  return {
    blk: all.has('virtio_blk'),
    scsi: all.has('virtio_scsi'),
    net: all.has('virtio_net'),
    pci: all.has('virtio_pci'),
    console: all.has('virtio_console'),
    rng: all.has('virtio_rng'),
    balloon: all.has('virtio_balloon'),
  };
}

/** True when the kernel has what a virtio disk and NIC need. */
export function hasVirtio(k: KernelInfo): boolean {
  return k.virtio.blk && k.virtio.net && k.virtio.pci;
}

/** Compares kernel versions the way `sort -V` would (newest last). */
export function compareKernelVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c =
      Number.isInteger(nx) && Number.isInteger(ny) && x !== '' && y !== ''
        ? nx - ny
        : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}

async function kernelsOf(guest: Guest): Promise<KernelInfo[]> {
  const kernels: KernelInfo[] = [];
  for (const version of await guest.ls('/lib/modules')) {
    const vmlinuz = `/boot/vmlinuz-${version}`;
    if (!(await guest.isFile(vmlinuz))) continue;
    const dir = `/lib/modules/${version}`;
    const dep = (await guest.readIfExists(`${dir}/modules.dep`)) ?? '';
    const builtin = (await guest.readIfExists(`${dir}/modules.builtin`)) ?? '';
    let initrd: string | undefined;
    for (const candidate of [
      `/boot/initrd.img-${version}`,
      `/boot/initramfs-${version}.img`,
      `/boot/initrd-${version}`,
    ]) {
      if (await guest.isFile(candidate)) {
        initrd = candidate;
        break;
      }
    }
    kernels.push({
      version,
      vmlinuz,
      initrd,
      virtio: virtioSupport(dep, builtin),
      xenOnly: /-xen(U)?$|xen$/.test(version),
    });
  }
  return kernels.sort((a, b) => compareKernelVersions(a.version, b.version));
}

async function bootloaderOf(guest: Guest): Promise<Bootloader> {
  for (const [kind, config] of [
    ['grub2', '/boot/grub/grub.cfg'],
    ['grub2', '/boot/grub2/grub.cfg'],
    ['extlinux', '/boot/extlinux/extlinux.conf'],
    ['extlinux', '/boot/syslinux/syslinux.cfg'],
    ['extlinux', '/boot/extlinux.conf'],
    ['grub-legacy', '/boot/grub/menu.lst'],
  ] as const) {
    if (await guest.isFile(config)) return { kind, config };
  }
  return { kind: 'unknown' };
}

function initramfsToolOf(packages: Set<string>): InitramfsTool {
  if (packages.has('dracut') || packages.has('dracut-core')) return 'dracut';
  if (packages.has('initramfs-tools')) return 'initramfs-tools';
  if (packages.has('mkinitrd')) return 'mkinitrd';
  return 'none';
}

/** Installed package names (libguestfs fails outright without a package database: empty). */
async function packagesOf(guest: Guest, root: string): Promise<string[]> {
  const apps = await guest.fs
    .call<{ app2_name: string }[]>('inspect_list_applications2', root)
    .catch((e: unknown) => {
      if (e instanceof GuestfsError && /No such file or directory/.test(e.message)) return [];
      throw e;
    });
  return [...new Set(apps.map((a) => a.app2_name))].sort();
}

/**
 * The guest's software inspected again, its file systems still mounted (after the plan's
 * prerequisites, e.g. a kernel package, were installed): packages, kernels, initramfs tool and
 * bootloader as they are now; the rest as before.
 */
export async function reinspectSoftware(
  guest: Guest,
  before: GuestInspection,
): Promise<GuestInspection> {
  if (before.type !== 'linux') return before;
  const packages = await packagesOf(guest, before.root);
  return {
    ...before,
    packages,
    kernels: await kernelsOf(guest),
    initramfsTool: initramfsToolOf(new Set(packages)),
    bootloader: await bootloaderOf(guest),
  };
}

/**
 * Inspects the guest's disks and mounts its file systems (read-write, or read-only for a dry
 * run), returning what the modules decide from.
 * @throws GuestfsError when no operating system is found, or more than one
 */
export async function inspectGuest(guest: Guest, readOnly: boolean): Promise<GuestInspection> {
  const g = guest.fs;
  const roots = await g.call<string[]>('inspect_os').catch((e: unknown) => {
    // libguestfs inspection reads a Windows guest's registry: a damaged hive fails it outright.
    if (e instanceof GuestfsError && /Hivex/i.test(e.message)) {
      throw new GuestfsError(
        'inspect_os',
        `the guest's Windows registry cannot be read (${e.message}): a registry hive (Windows/System32/config/SYSTEM or SOFTWARE) is damaged`,
        e.errno,
        {
          cause: e,
          hint: 'repair the guest (or restore its registry hives) on its hypervisor, then convert again',
        },
      );
    }
    throw e;
  });
  if (roots.length === 0) {
    throw new GuestfsError('inspect_os', 'no operating system was found on the guest disks', 0, {
      hint: 'check the disks are the guest system disks and not damaged',
    });
  }
  if (roots.length > 1) {
    throw new GuestfsError(
      'inspect_os',
      `the guest disks hold ${roots.length} operating systems (${roots.join(', ')}); multi-boot guests are not converted`,
    );
  }
  const root = roots[0] as string;
  const type = (await g.call<string>('inspect_get_type', root)) as GuestType;
  const distro = await g.call<string>('inspect_get_distro', root);
  const mountpoints = await g.call<Record<string, string>>('inspect_get_mountpoints', root);
  const order = Object.keys(mountpoints).sort((a, b) => a.length - b.length);
  for (const mp of order) {
    const dev = mountpoints[mp] as string;
    try {
      if (readOnly) await g.call('mount_ro', dev, mp);
      else await g.call('mount', dev, mp);
    } catch (e) {
      if (mp === '/') throw e;
      // A secondary file system that does not mount (swap listed, damaged) is not fatal.
    }
  }
  // A missing package database is an empty one for us (the pipeline refuses it clearly).
  const packages = await packagesOf(guest, root);
  const isLinux = type === 'linux';
  const windows: WindowsInfo | undefined =
    type === 'windows'
      ? {
          systemRoot: await g.call<string>('inspect_get_windows_systemroot', root),
          systemHive: await g.call<string>('inspect_get_windows_system_hive', root),
          softwareHive: await g.call<string>('inspect_get_windows_software_hive', root),
          productVariant: await g.call<string>('inspect_get_product_variant', root),
        }
      : undefined;
  return {
    root,
    type: GUEST_TYPES.includes(type) ? type : 'unknown',
    distro,
    family: familyOf(type, distro),
    majorVersion: await g.call<number>('inspect_get_major_version', root),
    minorVersion: await g.call<number>('inspect_get_minor_version', root),
    productName: await g.call<string>('inspect_get_product_name', root),
    arch: await g.call<string>('inspect_get_arch', root),
    packageFormat: await g.call<string>('inspect_get_package_format', root),
    packageManager: await g.call<string>('inspect_get_package_management', root),
    mountpoints,
    packages,
    kernels: isLinux ? await kernelsOf(guest) : [],
    initramfsTool: isLinux ? initramfsToolOf(new Set(packages)) : 'none',
    bootloader: isLinux ? await bootloaderOf(guest) : { kind: 'unknown' },
    ...(windows ? { windows } : {}),
  };
}
