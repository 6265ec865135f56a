import * as fs from 'node:fs/promises';
import { execa } from 'execa';
import { CommandNotFoundError, type CommandOutcome, NodeFileError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { killAllOnExit } from './kill-on-exit.js';
import type {
  DirEntry,
  FileStat,
  FileType,
  Node,
  RenameOptions,
  RunOptions,
  RunResult,
} from './node.js';
import { collectors, settle } from './output.js';
import { runLogged } from './run-log.js';
import { PASSPHRASE_ENV } from './ssh/ssh-auth.js';
import { tempSibling } from './temp-name.js';

/** What a {@link LocalNode} is given. */
export interface LocalNodeOptions {
  /** Gets a debug line for every command run (`-v`). */
  logger?: Logger | undefined;
}

/** The machine v2v-load runs on. Commands are spawned directly (execa), never via a shell. */
export class LocalNode implements Node {
  readonly name = 'local';
  readonly isLocal = true;
  private readonly log: Logger | undefined;

  constructor(options: LocalNodeOptions = {}) {
    this.log = options.logger;
  }

  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return runLogged(this.log, this.name, argv, () => this.execute(argv, options));
  }

  private async execute(argv: readonly string[], options: RunOptions): Promise<RunResult> {
    const [file, ...args] = argv;
    if (file === undefined) throw new TypeError('cannot run an empty argv');
    const started = performance.now();
    const { out, err } = collectors(options);
    const { stdin } = options;

    // detached: the command leads its own process group, so a timeout kills its children too.
    const child = execa(file, args, {
      reject: false,
      buffer: false,
      detached: true,
      cleanup: false,
      encoding: 'buffer',
      stripFinalNewline: false,
      extendEnv: true,
      // The key passphrase is for v2v-load's own SSH logins, not for the programs it runs.
      env: { [PASSPHRASE_ENV]: undefined, ...options.env },
      ...(stdin === undefined ? { stdin: 'ignore' as const } : { input: stdin }),
    });

    let timedOut = false;
    let aborted = false;
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const untrack = child.pid === undefined ? () => {} : killAllOnExit.track(child.pid);
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            killGroup();
          }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));

    const result = await child;
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    untrack();

    const outcome: CommandOutcome = {
      argv: [...argv],
      node: this.name,
      exitCode: result.exitCode,
      signal: result.signal ?? undefined,
      stdout: out.bytes().toString('utf8'),
      stderr: err.bytes().toString('utf8'),
      durationMs: Math.round(performance.now() - started),
      timedOut,
      aborted,
    };
    const cause = (result as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ENOENT' && result.exitCode === undefined) {
      throw new CommandNotFoundError(
        { ...outcome, stderr: `${file}: command not found` },
        { hint: `install \`${file}\` on this machine or put it on PATH`, cause },
      );
    }
    return settle(outcome, out.bytes(), options);
  }

  async readFile(p: string): Promise<Buffer> {
    return this.fileOp('read', p, () => fs.readFile(p));
  }

  async readFileRange(p: string, offset: number, length: number): Promise<Buffer> {
    return this.fileOp('read', p, async () => {
      const fh = await fs.open(p, 'r');
      try {
        const buf = Buffer.alloc(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      } finally {
        await fh.close();
      }
    });
  }

  async writeFileAtomic(
    p: string,
    data: string | Uint8Array,
    options: { mode?: number } = {},
  ): Promise<void> {
    const tmp = tempSibling(p);
    await this.fileOp('write', p, async () => {
      try {
        const fh = await fs.open(tmp, 'wx', options.mode ?? 0o644);
        try {
          await fh.writeFile(data);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, p);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    });
  }

  async stat(p: string): Promise<FileStat | undefined> {
    return this.fileOp('stat', p, async () => {
      try {
        const s = await fs.lstat(p);
        return {
          type: fileType(s),
          size: s.size,
          mode: s.mode & 0o7777,
          uid: s.uid,
          gid: s.gid,
          mtime: s.mtime,
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    });
  }

  async list(dir: string): Promise<DirEntry[]> {
    return this.fileOp('list', dir, async () => {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      return entries
        .map((e) => ({ name: e.name, type: fileType(e) }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    await this.fileOp('rename', `${from} -> ${to}`, () =>
      options.noReplace ? renameNoReplace(from, to) : fs.rename(from, to),
    );
  }

  async remove(p: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.fileOp('remove', p, () =>
      fs.rm(p, { force: true, recursive: options.recursive ?? false }),
    );
  }

  async mkdir(p: string, options: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    await this.fileOp('mkdir', p, async () => {
      await fs.mkdir(p, { recursive: options.recursive ?? false, mode: options.mode ?? 0o755 });
    });
  }

  async upload(localPath: string, nodePath: string): Promise<void> {
    await this.copyAtomic(localPath, nodePath, 'upload');
  }

  async download(nodePath: string, localPath: string): Promise<void> {
    await this.copyAtomic(nodePath, localPath, 'download');
  }

  async close(): Promise<void> {}

  private async copyAtomic(from: string, to: string, op: string): Promise<void> {
    const tmp = tempSibling(to);
    await this.fileOp(op, `${from} -> ${to}`, async () => {
      try {
        await fs.copyFile(from, tmp);
        await fs.rename(tmp, to);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    });
  }

  private async fileOp<T>(op: string, p: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new NodeFileError(this.name, op, p, err.code ?? err.message, { cause: e });
    }
  }
}

function fileType(s: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}): FileType {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'directory';
  if (s.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Errors of link(2) that mean "no hard link here", not "the target exists". */
const NO_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/**
 * rename(2) that never replaces: link(2) fails with EEXIST atomically when `to` exists; then
 * the old name is unlinked. Where no hard link can be made (a directory, a file system without
 * them) the target name is claimed exclusively first (O_EXCL file or mkdir), and the rename
 * replaces only that claim.
 */
async function renameNoReplace(from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to);
    await fs.unlink(from);
    return;
  } catch (e) {
    if (!NO_LINK.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
  }
  const st = await fs.lstat(from);
  if (st.isDirectory()) await fs.mkdir(to);
  else await (await fs.open(to, 'wx')).close();
  try {
    await fs.rename(from, to);
  } catch (e) {
    await fs.rm(to, { force: true, recursive: false }).catch(() => {});
    await fs.rmdir(to).catch(() => {});
    throw e;
  }
}
