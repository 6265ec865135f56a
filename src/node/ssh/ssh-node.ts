import * as fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ClientChannel, SFTPWrapper, Stats } from 'ssh2';
import { type CommandOutcome, ConnectionLostError, NodeFileError, V2vError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type {
  DirEntry,
  FileStat,
  FileType,
  Node,
  RenameOptions,
  RunOptions,
  RunResult,
} from '../node.js';
import { collectors, settle } from '../output.js';
import { quoteArgv } from '../quote.js';
import { runLogged } from '../run-log.js';
import { tempSibling } from '../temp-name.js';
import type { SshConnection } from './ssh-connection.js';

/** How long to wait for a killed command's channel to close before giving up on it. */
const KILL_GRACE_MS = 5_000;

/**
 * The remote command line: print the shell's PID (sshd makes it a session and process group
 * leader), then `exec` the argv in its place. The PID lets a timeout kill the whole process
 * group, children included, not only the channel.
 */
export function remoteCommandLine(argv: readonly string[], env?: Record<string, string>): string {
  const envWords = Object.entries(env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      throw new TypeError(`invalid environment variable name: ${JSON.stringify(k)}`);
    }
    return `${k}=${v}`;
  });
  const words = envWords.length ? ['env', ...envWords, ...argv] : [...argv];
  return `echo $$; exec ${quoteArgv(words)}`;
}

/** What an {@link SshNode} is given besides its connection. */
export interface SshNodeOptions {
  /** Gets a debug line for every command run (`-v`). */
  logger?: Logger | undefined;
}

/** A node reached over SSH; every command and file operation shares one pooled connection. */
export class SshNode implements Node {
  readonly isLocal = false;
  readonly name: string;
  private readonly log: Logger | undefined;

  constructor(
    private readonly conn: SshConnection,
    options: SshNodeOptions = {},
  ) {
    this.name = conn.name;
    this.log = options.logger;
  }

  /** The connection this node uses (shared with every node for the same host). */
  get connection(): SshConnection {
    return this.conn;
  }

  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return runLogged(this.log, this.name, argv, () => this.execute(argv, options));
  }

  private async execute(argv: readonly string[], options: RunOptions): Promise<RunResult> {
    if (argv.length === 0) throw new TypeError('cannot run an empty argv');
    const command = remoteCommandLine(argv, options.env);
    if (options.signal?.aborted) {
      throw new V2vError(`\`${argv[0]}\` on ${this.name} was aborted before it started`);
    }
    return this.conn.withSlot(async () => {
      const started = performance.now();
      const channel = await this.conn.exec(command);
      return this.drive(channel, argv, options, started);
    });
  }

  private drive(
    channel: ClientChannel,
    argv: readonly string[],
    options: RunOptions,
    started: number,
  ): Promise<RunResult> {
    const { out, err } = collectors(options);
    let pid: number | undefined;
    let head: Buffer | undefined = Buffer.alloc(0);
    let exitCode: number | undefined;
    let signal: string | undefined;
    let timedOut = false;
    let aborted = false;
    let killed = false;

    return new Promise<RunResult>((resolve, reject) => {
      let settled = false;
      const cleanups: Array<() => void> = [];
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        for (const c of cleanups) c();
        fn();
      };

      // Timeout or abort: the remote process group first (children included), then the
      // channel's own process; the command's pid may still be on its way (see 'data').
      const signalChannel = () => {
        try {
          channel.signal('KILL');
        } catch {
          // channel already gone
        }
      };
      const kill = () => {
        if (killed) return;
        killed = true;
        if (pid !== undefined) void this.killGroup(pid).finally(signalChannel);
        else signalChannel();
        const grace = setTimeout(() => {
          channel.close();
          finish(outcomeDone);
        }, KILL_GRACE_MS);
        cleanups.push(() => clearTimeout(grace));
      };

      if (options.timeoutMs !== undefined) {
        const t = setTimeout(() => {
          timedOut = true;
          kill();
        }, options.timeoutMs);
        cleanups.push(() => clearTimeout(t));
      }
      if (options.signal) {
        const onAbort = () => {
          aborted = true;
          kill();
        };
        // The signal may have aborted while the channel was being opened.
        if (options.signal.aborted) queueMicrotask(onAbort);
        else {
          options.signal.addEventListener('abort', onAbort, { once: true });
          cleanups.push(() => options.signal?.removeEventListener('abort', onAbort));
        }
      }
      cleanups.push(
        this.conn.onLost(() => finish(() => reject(new ConnectionLostError(this.name, argv)))),
      );

      channel.on('data', (chunk: Buffer) => {
        if (head !== undefined) {
          // The first line is the PID printed by remoteCommandLine.
          head = Buffer.concat([head, chunk]);
          const nl = head.indexOf(10);
          if (nl < 0) return;
          pid = Number(head.subarray(0, nl).toString('latin1'));
          chunk = head.subarray(nl + 1);
          head = undefined;
          if (killed) void this.killGroup(pid);
          if (chunk.length === 0) return;
        }
        out.push(chunk);
      });
      channel.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      channel.on('exit', (code: number | null, sig?: string) => {
        if (typeof code === 'number') exitCode = code;
        if (sig) signal = sig.startsWith('SIG') ? sig : `SIG${sig}`;
      });

      const outcomeDone = () => {
        const outcome: CommandOutcome = {
          argv: [...argv],
          node: this.name,
          exitCode,
          signal,
          stdout: out.bytes().toString('utf8'),
          stderr: err.bytes().toString('utf8'),
          durationMs: Math.round(performance.now() - started),
          timedOut,
          aborted,
        };
        try {
          resolve(settle(outcome, out.bytes(), options));
        } catch (e) {
          reject(e);
        }
      };
      channel.on('close', () => {
        // A channel that closes with no exit status while the connection died is reported by
        // onLost; give that event a tick to arrive first.
        setImmediate(() => {
          if (exitCode === undefined && signal === undefined && !killed && !this.conn.isConnected) {
            finish(() => reject(new ConnectionLostError(this.name, argv)));
            return;
          }
          finish(outcomeDone);
        });
      });

      this.feedStdin(channel, options.stdin);
    });
  }

  private feedStdin(channel: ClientChannel, stdin: RunOptions['stdin']): void {
    channel.on('error', () => {}); // errors surface through close / onLost
    if (stdin === undefined) {
      channel.end();
    } else if (stdin instanceof Readable) {
      stdin.pipe(channel);
    } else {
      channel.end(stdin);
    }
  }

  /** Kills the process group of a timed-out or aborted command, on a channel outside the slot limit. */
  private async killGroup(pid: number): Promise<void> {
    if (!Number.isInteger(pid) || pid <= 1) return;
    try {
      const ch = await this.conn.exec(quoteArgv(['kill', '-s', 'KILL', '--', `-${pid}`]));
      ch.on('error', () => {});
      ch.resume();
      ch.stderr.resume();
      ch.end();
    } catch {
      // the connection is gone: so is the command's session
    }
  }

  // ---- files (SFTP) ----

  async readFile(path: string): Promise<Buffer> {
    return this.withSftp('read', path, (sftp) => cb<Buffer>((c) => sftp.readFile(path, c)));
  }

  async readFileRange(path: string, offset: number, length: number): Promise<Buffer> {
    return this.withSftp('read', path, async (sftp) => {
      const handle = await cb<Buffer>((c) => sftp.open(path, 'r', c));
      try {
        const buf = Buffer.alloc(length);
        let got = 0;
        while (got < length) {
          // SFTP servers cap one read (OpenSSH: 256 KiB); a short read is not the end.
          const want = Math.min(length - got, 64 * 1024);
          const n = await new Promise<number>((resolve, reject) =>
            sftp.read(handle, buf, got, want, offset + got, (err, bytesRead) =>
              // ssh2 reports end of file as an error with the EOF status code
              err
                ? (err as { code?: number }).code === 1
                  ? resolve(0)
                  : reject(err)
                : resolve(bytesRead),
            ),
          );
          if (n === 0) break;
          got += n;
        }
        return buf.subarray(0, got);
      } finally {
        await cb<void>((c) => sftp.close(handle, c)).catch(() => {});
      }
    });
  }

  async writeFileAtomic(
    path: string,
    data: string | Uint8Array,
    options: { mode?: number } = {},
  ): Promise<void> {
    const tmp = tempSibling(path);
    await this.withSftp('write', path, async (sftp) => {
      try {
        await cb<void>((c) =>
          sftp.writeFile(tmp, Buffer.from(data), { mode: options.mode ?? 0o644, flag: 'wx' }, c),
        );
        await cb<void>((c) => sftp.ext_openssh_rename(tmp, path, c));
      } catch (e) {
        await cb<void>((c) => sftp.unlink(tmp, c)).catch(() => {});
        throw e;
      }
    });
  }

  async stat(path: string): Promise<FileStat | undefined> {
    return this.withSftp('stat', path, async (sftp) => {
      try {
        const s = await cb<Stats>((c) => sftp.lstat(path, c));
        return {
          type: typeOfMode(s.mode),
          size: s.size,
          mode: s.mode & 0o7777,
          uid: s.uid,
          gid: s.gid,
          mtime: new Date(s.mtime * 1000),
        };
      } catch (e) {
        if (isNoSuchFile(e)) return undefined;
        throw e;
      }
    });
  }

  async list(dir: string): Promise<DirEntry[]> {
    return this.withSftp('list', dir, async (sftp) => {
      const entries = await cb<Array<{ filename: string; attrs: Stats }>>((c) =>
        sftp.readdir(dir, c),
      );
      return entries
        .filter((e) => e.filename !== '.' && e.filename !== '..')
        .map((e) => ({ name: e.filename, type: typeOfMode(e.attrs.mode) }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    if (!options.noReplace) {
      await this.withSftp('rename', `${from} -> ${to}`, (sftp) =>
        cb<void>((c) => sftp.ext_openssh_rename(from, to, c)),
      );
      return;
    }
    // The plain SFTP v3 rename never replaces: OpenSSH's sftp-server links the new name (which
    // fails if it exists) and unlinks the old one; posix-rename@openssh.com would replace.
    await this.withSftp('rename', `${from} -> ${to}`, async (sftp) => {
      try {
        await cb<void>((c) => sftp.rename(from, to, c));
      } catch (e) {
        const exists = await cb<Stats>((c) => sftp.lstat(to, c)).then(
          () => true,
          () => false,
        );
        if (exists) throw Object.assign(new Error('EEXIST (the target exists)'), { code: -1 });
        throw e;
      }
    });
  }

  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    if (options.recursive) {
      await this.run(['rm', '-rf', '--', path]);
      return;
    }
    await this.withSftp('remove', path, async (sftp) => {
      try {
        const s = await cb<Stats>((c) => sftp.lstat(path, c));
        if (typeOfMode(s.mode) === 'directory') await cb<void>((c) => sftp.rmdir(path, c));
        else await cb<void>((c) => sftp.unlink(path, c));
      } catch (e) {
        if (!isNoSuchFile(e)) throw e;
      }
    });
  }

  async mkdir(path: string, options: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    const mode = (options.mode ?? 0o755).toString(8);
    if (options.recursive) {
      await this.run(['mkdir', '-p', '-m', mode, '--', path]);
      return;
    }
    await this.withSftp('mkdir', path, (sftp) =>
      cb<void>((c) => sftp.mkdir(path, { mode: options.mode ?? 0o755 }, c)),
    );
  }

  async upload(localPath: string, nodePath: string): Promise<void> {
    const tmp = tempSibling(nodePath);
    await this.withSftp('upload', `${localPath} -> ${nodePath}`, async (sftp) => {
      try {
        await cb<void>((c) => sftp.fastPut(localPath, tmp, { concurrency: 64 }, c));
        await cb<void>((c) => sftp.ext_openssh_rename(tmp, nodePath, c));
      } catch (e) {
        await cb<void>((c) => sftp.unlink(tmp, c)).catch(() => {});
        throw e;
      }
    });
  }

  async download(nodePath: string, localPath: string): Promise<void> {
    const tmp = tempSibling(localPath);
    await this.withSftp('download', `${nodePath} -> ${localPath}`, async (sftp) => {
      try {
        await cb<void>((c) => sftp.fastGet(nodePath, tmp, { concurrency: 64 }, c));
        await fs.rename(tmp, localPath);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    await this.conn.close();
  }

  private async withSftp<T>(
    op: string,
    path: string,
    fn: (sftp: SFTPWrapper) => Promise<T>,
  ): Promise<T> {
    return this.conn.withSlot(async () => {
      const sftp = await this.conn.sftp();
      const lost = new Promise<never>((_, reject) => {
        const off = this.conn.onLost(() => {
          off();
          reject(new ConnectionLostError(this.name, undefined));
        });
        sftp.once('close', off);
      });
      lost.catch(() => {});
      try {
        return await Promise.race([fn(sftp), lost]);
      } catch (e) {
        if (e instanceof V2vError) throw e;
        throw new NodeFileError(this.name, op, path, sftpReason(e), { cause: e });
      } finally {
        // Hold the channel slot until the server has closed the channel: otherwise the next
        // operation can open a channel while this one still counts against MaxSessions.
        await new Promise<void>((resolve) => {
          sftp.once('close', () => resolve());
          sftp.end();
          setTimeout(resolve, 5_000).unref();
        });
      }
    });
  }
}

/** Adapts a node-style callback API to a promise. */
function cb<T>(
  call: (done: (err: Error | null | undefined, value?: T) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    call((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

function typeOfMode(mode: number): FileType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    default:
      return 'other';
  }
}

function isNoSuchFile(e: unknown): boolean {
  return (e as { code?: number }).code === 2;
}

/** SFTP status codes as errno-like words, so messages read the same on every node. */
function sftpReason(e: unknown): string {
  const code = (e as { code?: number }).code;
  const names: Record<number, string> = {
    2: 'ENOENT',
    3: 'EACCES',
    4: 'failure (exists, not empty, or no space?)',
  };
  const message = e instanceof Error ? e.message : String(e);
  return code !== undefined && names[code] ? `${names[code]} (${message})` : message;
}
