/**
 * The virtio-win driver tree (`--virtio-win DIR_OR_ISO`), in the layout of the virtio-win ISO:
 * `DRIVER/OSDIR/ARCH/FILE`, e.g. `viostor/w7/amd64/viostor.sys`, `NetKVM/2k19/amd64/netkvm.inf`
 * (names compared case-insensitively). A directory is read in place; an ISO is listed and the
 * chosen driver folders extracted with xorriso into a temporary directory of the run.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { ConversionError } from '../convert/errors.js';
import type { GuestInspection } from '../convert/inspection.js';
import type { ModuleIo } from '../convert/modules.js';
import {
  VIRTIO_DRIVER_NAMES,
  type VirtioDriverName,
  type WindowsDriverFiles,
} from '../guestos/windows.js';
import { scratchName } from '../node/scratch.js';

export interface VirtioWinTree {
  source: string;
  kind: 'dir' | 'iso';
  /** Relative paths of its files, `/`-separated. */
  files: string[];
}

/** One driver chosen for the guest: its folder in the tree and its files there. */
export interface DriverPick {
  name: VirtioDriverName;
  dir: string;
  files: string[];
}

/** The driver files that matter (debug symbols and the rest stay out). */
const DRIVER_FILE = /\.(sys|inf|cat)$/i;

/** virtio-win's architecture folder for an inspection arch. */
export function archDir(arch: string): 'amd64' | 'x86' | undefined {
  if (arch === 'x86_64') return 'amd64';
  if (/^i[3-6]86$/.test(arch)) return 'x86';
  return undefined;
}

/** virtio-win's OS folders for a Windows version, best first. */
export function osDirs(
  i: Pick<GuestInspection, 'majorVersion' | 'minorVersion' | 'productName'> & {
    variant: string;
  },
): string[] {
  const server = i.variant.toLowerCase() === 'server';
  const v = `${i.majorVersion}.${i.minorVersion}`;
  const p = i.productName;
  switch (v) {
    case '5.1':
      return ['xp'];
    case '5.2':
      return server ? ['2k3'] : ['xp', '2k3'];
    case '6.0':
      return server ? ['2k8'] : ['vista'];
    case '6.1':
      return server ? ['2k8R2'] : ['w7'];
    case '6.2':
      return server ? ['2k12'] : ['w8'];
    case '6.3':
      return server ? ['2k12R2'] : ['w8.1'];
    case '10.0':
      if (!server) return /Windows 11/i.test(p) ? ['w11', 'w10'] : ['w10'];
      if (/2025/.test(p)) return ['2k25', '2k22'];
      if (/2022/.test(p)) return ['2k22'];
      if (/2019/.test(p)) return ['2k19'];
      if (/2016/.test(p)) return ['2k16'];
      return ['2k19', '2k16'];
    default:
      return [];
  }
}

/** Parses `xorriso -find` output: one quoted path per line (`'` written as `'\''`). */
export function parseXorrisoFind(out: string): string[] {
  const files: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^'(.*)'$/.exec(line.trim());
    if (m) files.push((m[1] as string).replace(/'\\''/g, "'").replace(/^\/+/, ''));
  }
  return files;
}

/** Lists the tree: a directory (regular files only) or an ISO image. */
export async function listVirtioWin(io: ModuleIo, source: string): Promise<VirtioWinTree> {
  const st = await io.node.stat(source);
  if (st?.type === 'directory') {
    const r = await io.node.run(['find', source, '-type', 'f', '-printf', '%P\\n']);
    return { source, kind: 'dir', files: r.stdout.split('\n').filter(Boolean).sort() };
  }
  if (st?.type !== 'file') {
    throw new ConversionError(`--virtio-win ${source}: not a directory or an ISO file`);
  }
  const r = await io.node
    .run(['xorriso', '-osirrox', 'on', '-indev', source, '-find', '/', '-type', 'f'])
    .catch((e: unknown) => {
      throw new ConversionError(
        `--virtio-win ${source}: cannot read it as an ISO image: ${(e as Error).message.split('\n')[0]}`,
        {
          cause: e,
          hint: 'give the virtio-win ISO or a directory with its layout (xorriso must be installed)',
        },
      );
    });
  return { source, kind: 'iso', files: parseXorrisoFind(r.stdout).sort() };
}

/**
 * The drivers of the tree for this guest: for each of viostor, vioscsi, netkvm the first OS
 * folder (of {@link osDirs}) that has its .sys and .inf for the guest's architecture.
 */
export function pickDrivers(
  tree: VirtioWinTree,
  i: Pick<GuestInspection, 'majorVersion' | 'minorVersion' | 'productName' | 'arch'> & {
    variant: string;
  },
): { picks: DriverPick[]; looked: string[] } {
  const arch = archDir(i.arch);
  const dirs = osDirs(i);
  const picks: DriverPick[] = [];
  const looked: string[] = [];
  for (const name of VIRTIO_DRIVER_NAMES) {
    for (const os of dirs) {
      const dir = `${name}/${os}/${arch ?? i.arch}`;
      looked.push(dir);
      const prefix = `${dir.toLowerCase()}/`;
      const files = tree.files.filter((f) => {
        const lc = f.toLowerCase();
        return (
          lc.startsWith(prefix) && !lc.slice(prefix.length).includes('/') && DRIVER_FILE.test(lc)
        );
      });
      const has = (ext: string) => files.some((f) => f.toLowerCase() === `${prefix}${name}.${ext}`);
      if (arch && has('sys') && has('inf')) {
        picks.push({ name, dir: files[0]?.slice(0, prefix.length - 1) as string, files });
        break;
      }
    }
  }
  return { picks, looked };
}

/**
 * The picked drivers' files on the node: in place for a directory, extracted from an ISO into
 * a temporary directory (removed with the run).
 */
export async function driverFiles(
  io: ModuleIo,
  tree: VirtioWinTree,
  picks: readonly DriverPick[],
): Promise<WindowsDriverFiles[]> {
  let base = tree.source;
  if (tree.kind === 'iso' && picks.length) {
    base = scratchName('/var/tmp/v2v-load-virtio-win-');
    await io.node.mkdir(base, { mode: 0o700 });
    const dir = base;
    io.cleanup.defer(`remove ${dir}`, () => io.node.remove(dir, { recursive: true }));
    const argv = ['xorriso', '-osirrox', 'on', '-indev', tree.source];
    for (const p of picks) argv.push('-extract', `/${p.dir}`, path.posix.join(dir, p.dir));
    await io.node.run(argv);
  }
  const out: WindowsDriverFiles[] = [];
  for (const p of picks) {
    const files = p.files.map((f) => path.posix.join(base, f));
    const inf = files.find((f) => f.toLowerCase().endsWith(`/${p.name}.inf`)) as string;
    const infId = createHash('sha256')
      .update(await io.node.readFile(inf))
      .digest('hex')
      .slice(0, 16);
    out.push({ name: p.name, from: p.dir, files, infId });
  }
  return out;
}
