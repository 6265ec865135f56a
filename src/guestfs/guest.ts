/**
 * Typed access to a mounted guest's files and programs over a {@link GuestfsSession}. Paths
 * are guest paths; guest programs run with an argv (libguestfs `command`), never a shell line.
 */
import { decodeRegValue, encodeRegValue, type RegKey, type RegValue } from '../convert/registry.js';
import type { GuestfsSession } from './session.js';

/** Bytes per libguestfs read or write call (its messages are limited to a few MiB). */
const CHUNK = 1 << 20;

interface AgentRegKey {
  values: { name: string; type: number; data: Uint8Array }[];
  subkeys: string[];
}

export class Guest {
  constructor(readonly fs: GuestfsSession) {}

  exists(path: string): Promise<boolean> {
    return this.fs.call<boolean>('exists', path);
  }

  isFile(path: string): Promise<boolean> {
    return this.fs.call<boolean>('is_file', path, { followsymlinks: true });
  }

  isDir(path: string): Promise<boolean> {
    return this.fs.call<boolean>('is_dir', path, { followsymlinks: true });
  }

  /** A text file's content (UTF-8). */
  async read(path: string): Promise<string> {
    const b = await this.fs.call<Buffer>('read_file', path);
    return Buffer.from(b).toString('utf8');
  }

  /** A text file, or undefined when it does not exist. */
  async readIfExists(path: string): Promise<string | undefined> {
    return (await this.isFile(path)) ? this.read(path) : undefined;
  }

  /** Writes a file (created, or truncated keeping its mode), then sets `mode` when given. */
  async write(path: string, content: string | Uint8Array, mode?: number): Promise<void> {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    await this.fs.call('write', path, bytes);
    if (mode !== undefined) await this.fs.call('chmod', mode, path);
  }

  /** The names in a directory (empty when it does not exist). */
  async ls(dir: string): Promise<string[]> {
    if (!(await this.isDir(dir))) return [];
    return this.fs.call<string[]>('ls', dir);
  }

  /** Paths matching a glob pattern (libguestfs glob_expand). */
  glob(pattern: string): Promise<string[]> {
    return this.fs.call<string[]>('glob_expand', pattern);
  }

  mkdirP(path: string): Promise<void> {
    return this.fs.call('mkdir_p', path);
  }

  async rm(path: string): Promise<void> {
    await this.fs.call('rm_f', path);
  }

  async rmRf(path: string): Promise<void> {
    await this.fs.call('rm_rf', path);
  }

  async cp(from: string, to: string): Promise<void> {
    await this.fs.call('cp_a', from, to);
  }

  /** Runs a guest program (chrooted into the guest) and returns its stdout. */
  command(argv: readonly string[]): Promise<string> {
    return this.fs.call<string>('command', [...argv]);
  }

  /** The target of a symlink. */
  readlink(path: string): Promise<string> {
    return this.fs.call<string>('readlink', path);
  }

  async isSymlink(path: string): Promise<boolean> {
    return this.fs.call<boolean>('is_symlink', path);
  }

  /** A file's permission and type bits (st_mode). */
  async mode(path: string): Promise<number> {
    const st = await this.fs.call<{ st_mode: number }>('statns', path);
    return st.st_mode;
  }

  /**
   * A file's bytes of any size, read in chunks (one libguestfs message holds at most a few
   * MiB, so `read_file` cannot carry an initramfs).
   */
  async readBytes(path: string): Promise<Buffer> {
    const size = await this.fs.call<number>('filesize', path);
    const parts: Buffer[] = [];
    for (let off = 0; off < size; ) {
      const part = Buffer.from(
        await this.fs.call<Uint8Array>('pread', path, Math.min(CHUNK, size - off), off),
      );
      if (!part.length) break;
      parts.push(part);
      off += part.length;
    }
    const all = Buffer.concat(parts);
    if (all.length !== size) {
      throw new Error(`${path}: read ${all.length} of its ${size} bytes`);
    }
    return all;
  }

  /** Writes a file of any size in chunks (created or truncated; mode 0644 when created). */
  async writeBytes(path: string, data: Uint8Array): Promise<void> {
    await this.fs.call('write', path, Buffer.from(data.subarray(0, CHUNK)));
    for (let off = CHUNK; off < data.length; off += CHUNK) {
      await this.fs.call('write_append', path, Buffer.from(data.subarray(off, off + CHUNK)));
    }
  }

  /** Registry keys of a hive file (read-only, one hivex open for all of them). */
  async regKeys(
    hive: string,
    keys: readonly (readonly string[])[],
  ): Promise<(RegKey | undefined)[]> {
    const raw = await this.fs.call<(AgentRegKey | null)[]>('v2v_reg_keys', hive, keys);
    return raw.map((k) =>
      k
        ? {
            values: Object.fromEntries(
              k.values.map((v) => [v.name, decodeRegValue(v.type, Buffer.from(v.data))]),
            ),
            subkeys: k.subkeys,
          }
        : undefined,
    );
  }

  /** Sets values on registry keys (created with their parents), in one open and commit. */
  async regSet(
    hive: string,
    edits: readonly {
      key: readonly string[];
      values: readonly { name: string; value: RegValue }[];
    }[],
  ): Promise<void> {
    await this.fs.call(
      'v2v_reg_set',
      hive,
      edits.map((e) => ({
        key: e.key,
        values: e.values.map((v) => {
          const { type, data } = encodeRegValue(v.value);
          return { name: v.name, type, data };
        }),
      })),
    );
  }
}
