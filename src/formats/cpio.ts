/**
 * The cpio "newc" format (SVR4 without CRC, magic 070701): the format of Linux initramfs
 * archives. Only writing is needed: an archive appended to an initramfs (the kernel unpacks a
 * concatenation of archives, compressed or not, later files replacing earlier ones).
 */

/** One member: a directory (no data) or a regular file. */
export interface CpioEntry {
  /** Relative path, no leading slash (e.g. `usr/lib/modules`). */
  path: string;
  kind: 'dir' | 'file';
  /** Permission bits (e.g. 0o755). */
  perm: number;
  data?: Uint8Array | undefined;
  /** Seconds since the epoch; 0 keeps archives byte-reproducible. */
  mtime?: number | undefined;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(`cpio: field value ${n} does not fit in 32 bits`);
  }
  return n.toString(16).toUpperCase().padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function header(
  ino: number,
  mode: number,
  nlink: number,
  mtime: number,
  size: number,
  name: string,
): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const fields = [
    ino,
    mode,
    0, // uid
    0, // gid
    nlink,
    mtime,
    size,
    0, // devmajor
    0, // devminor
    0, // rdevmajor
    0, // rdevminor
    nameBytes.length,
    0, // check
  ];
  const head = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  const total = head.length + nameBytes.length;
  return Buffer.concat([head, nameBytes, pad4(total)]);
}

/** A newc archive of the entries, in order, ended by the TRAILER!!! member. */
export function newcArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    if (
      !e.path ||
      e.path.startsWith('/') ||
      e.path.split('/').some((s) => s === '..' || s === '')
    ) {
      throw new Error(
        `cpio: member path '${e.path}' must be relative, without '..' or empty parts`,
      );
    }
    const data = e.kind === 'file' ? Buffer.from(e.data ?? new Uint8Array()) : Buffer.alloc(0);
    const mode = (e.kind === 'dir' ? S_IFDIR : S_IFREG) | (e.perm & 0o7777);
    parts.push(header(ino++, mode, e.kind === 'dir' ? 2 : 1, e.mtime ?? 0, data.length, e.path));
    parts.push(data, pad4(data.length));
  }
  parts.push(header(0, 0, 1, 0, 0, 'TRAILER!!!'));
  return Buffer.concat(parts);
}

/** The directories above each path (parents first), each once: `a/b/c` → `a`, `a/b`. */
export function parentDirs(paths: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!seen.has(d)) {
        seen.add(d);
        out.push(d);
      }
    }
  }
  return out;
}
