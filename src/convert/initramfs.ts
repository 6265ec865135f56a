/**
 * Extending a guest's initramfs with the drivers the target needs, without rebuilding it.
 *
 * The kernel unpacks an initramfs that is a concatenation of cpio archives (compressed or
 * not; later members replace earlier ones): the same mechanism that prepends early microcode.
 * The guest's own image stays as its tool built it and gets one more archive: the module
 * files of the drivers and everything they depend on (from the guest's modules.dep), and the
 * guest's module index, so udev and modprobe in the initramfs find them by alias. Under TCG a
 * rebuild by the guest's tool (update-initramfs, dracut) runs hundreds of guest programs and
 * costs minutes; this costs a few file reads. The initramfs configuration is still edited
 * (GuestOs.enableDrivers), so the guest's next rebuild keeps the drivers.
 *
 * It is planned only where it is known to be right: an initramfs-tools or dracut image of a
 * kernel whose modules are not compressed (initramfs-tools decompresses modules into its
 * image, and the index must name the files the image holds). Elsewhere the guest's tool
 * rebuilds the image (`--initramfs rebuild` asks for that everywhere).
 */

import { gzipSync } from 'node:zlib';
import { type CpioEntry, newcArchive, parentDirs } from '../formats/cpio.js';
import type { Guest } from '../guestfs/guest.js';

export const INITRAMFS_MODES = ['extend', 'rebuild'] as const;
export type InitramfsMode = (typeof INITRAMFS_MODES)[number];

/** The module index files of a kernel copied with the modules (those the guest has). */
export const MODULE_INDEX_FILES = [
  'modules.alias',
  'modules.alias.bin',
  'modules.builtin',
  'modules.builtin.alias.bin',
  'modules.builtin.bin',
  'modules.builtin.modinfo',
  'modules.dep',
  'modules.dep.bin',
  'modules.devname',
  'modules.order',
  'modules.softdep',
  'modules.symbols',
  'modules.symbols.bin',
] as const;

/** Where the added archive goes while it is written, beside the image. */
export const NEW_INITRD_SUFFIX = '.v2v-load-new';

/** A module name as modprobe compares them (`virtio-rng` and `virtio_rng` are one). */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

export interface ModuleClosure {
  /** Module files to add, relative to the kernel's modules directory, dependencies first. */
  files: string[];
  /** Wanted modules built into the kernel (nothing to add). */
  builtin: string[];
  /** Wanted modules the kernel has neither as a file nor built in. */
  missing: string[];
  /** Whether any file to add is compressed (.ko.xz, .ko.zst, .ko.gz). */
  compressed: boolean;
}

/**
 * The module files that load `wanted` and everything they depend on, from a kernel's
 * modules.dep (`path: dep dep...`, paths relative to its modules directory) and
 * modules.builtin.
 */
export function moduleClosure(
  modulesDep: string,
  modulesBuiltin: string | undefined,
  wanted: readonly string[],
): ModuleClosure {
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of modulesDep.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const path = line.slice(0, i).trim();
    const list = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    deps.set(moduleName(path), { path, deps: list });
  }
  const byPath = new Map([...deps.values()].map((d) => [d.path, d]));
  const builtinSet = new Set(
    (modulesBuiltin ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map(moduleName),
  );
  const files: string[] = [];
  const seen = new Set<string>();
  const add = (path: string): void => {
    if (seen.has(path)) return;
    seen.add(path);
    // modules.dep lists every dependency of a module, transitively, on its own line.
    for (const d of byPath.get(path)?.deps ?? []) add(d);
    files.push(path);
  };
  const builtin: string[] = [];
  const missing: string[] = [];
  for (const w of wanted) {
    const d = deps.get(moduleName(w));
    if (d) add(d.path);
    else if (builtinSet.has(moduleName(w))) builtin.push(w);
    else missing.push(w);
  }
  return {
    files,
    builtin,
    missing,
    compressed: files.some((f) => !f.endsWith('.ko')),
  };
}

/** The archive appended to the image: the module files and the index under `prefix`. */
export function modulesArchive(
  prefix: string,
  files: readonly { name: string; data: Uint8Array }[],
): Buffer {
  const entries: CpioEntry[] = files.map((f) => ({
    path: `${prefix}/${f.name}`,
    kind: 'file',
    perm: 0o644,
    data: f.data,
  }));
  const dirs: CpioEntry[] = parentDirs(entries.map((e) => e.path)).map((d) => ({
    path: d,
    kind: 'dir',
    perm: 0o755,
  }));
  return newcArchive([...dirs, ...entries]);
}

/**
 * The initramfs image extended with `archive` (gzip-compressed, which every kernel unpacks),
 * after zero padding to a 4-byte boundary (the unpacker skips zeros between archives).
 */
export function appendArchive(image: Uint8Array, archive: Uint8Array): Buffer {
  const pad = (4 - (image.length % 4)) % 4;
  return Buffer.concat([image, Buffer.alloc(pad), gzipSync(archive, { level: 6 })]);
}

/** What an `extend-initramfs` action needs. */
export interface ExtendInitramfs {
  /** The image in the guest, e.g. /boot/initrd.img-6.1.0-50-amd64. */
  initrd: string;
  /** The kernel release, e.g. 6.1.0-50-amd64. */
  kernel: string;
  /** Module files relative to /lib/modules/KERNEL, dependencies first. */
  files: string[];
}

/**
 * Appends the modules and the module index to the guest's image: the new image is written
 * beside it and renamed over it (a crash leaves the old image, or the new one, whole).
 * Returns the bytes added.
 */
export async function extendInitramfs(guest: Guest, a: ExtendInitramfs): Promise<number> {
  const modulesDir = `/lib/modules/${a.kernel}`;
  // Images built on a merged-/usr system hold the modules under usr/lib, with lib a symlink:
  // an archive member named lib/... would replace that symlink with a directory.
  const merged = await guest.isSymlink('/lib');
  const prefix = `${merged ? 'usr/lib' : 'lib'}/modules/${a.kernel}`;
  const present = new Set(await guest.ls(modulesDir));
  const names = [...a.files, ...MODULE_INDEX_FILES.filter((f) => present.has(f))];
  const files: { name: string; data: Uint8Array }[] = [];
  for (const name of names) {
    files.push({ name, data: await guest.readBytes(`${modulesDir}/${name}`) });
  }
  const image = await guest.readBytes(a.initrd);
  const out = appendArchive(image, modulesArchive(prefix, files));
  const tmp = `${a.initrd}${NEW_INITRD_SUFFIX}`;
  const mode = await guest.mode(a.initrd);
  await guest.writeBytes(tmp, out);
  await guest.fs.call('chmod', mode & 0o7777, tmp);
  await guest.fs.call('mv', tmp, a.initrd);
  return out.length - image.length;
}
