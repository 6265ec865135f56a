/**
 * Runs `virsh -c URI ...` on a node, with a timeout, in the C locale (libvirt's messages in
 * English, so {@link classifyLibvirtError} can read them). Failures become {@link LibvirtError}.
 */

import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { CommandError } from '../../errors.js';
import type { Node } from '../../node/node.js';
import { quoteWord } from '../../node/quote.js';
import { LibvirtError, toLibvirtError } from './errors.js';

/** The libvirt URI when none is given (`--connect`): the one default of every command. */
export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

/** Default timeout of one virsh command. */
export const DEFAULT_VIRSH_TIMEOUT_MS = 120_000;

/** Options of one virsh run. */
export interface VirshRunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A virsh runner bound to a node and a libvirt URI. */
export class Virsh {
  constructor(
    readonly node: Node,
    readonly uri: string,
    readonly timeoutMs: number = DEFAULT_VIRSH_TIMEOUT_MS,
  ) {}

  /** `qemu:///system on local` — used in every message. */
  get where(): string {
    return `${this.uri} on ${this.node.name}`;
  }

  /**
   * Runs `virsh -c URI ...args` and returns its stdout.
   * @param operation what is being done, for the error message (`start domain "web"`).
   * @throws LibvirtError when virsh fails; CommandError on timeout; NodeUnreachableError.
   */
  async run(
    args: readonly string[],
    operation: string,
    options: VirshRunOptions = {},
  ): Promise<string> {
    try {
      const r = await this.node.run(['virsh', '-c', this.uri, ...args], {
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        env: { LC_ALL: 'C', LANG: 'C' },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return r.stdout;
    } catch (e) {
      throw toLibvirtError(e, operation, this.where);
    }
  }

  /**
   * Runs several virsh commands in ONE virsh process (one libvirt connection, and on an SSH
   * node one remote command instead of one per virsh call): virsh's own command string
   * `cmd1 args; echo MARK; cmd2 args; ...`, every word quoted for virsh's parser (the same
   * single-quote rule as a POSIX shell: {@link quoteWord}). virsh goes on after a failed
   * command; any `error:` on stderr fails the whole batch.
   * @returns each command's stdout, in order
   * @throws LibvirtError when a command failed (the detail is virsh's message)
   */
  async batch(
    commands: readonly (readonly string[])[],
    operation: string,
    options: VirshRunOptions = {},
  ): Promise<string[]> {
    if (commands.length === 1) return [await this.run(commands[0] ?? [], operation, options)];
    const mark = `@@v2vload-${randomBytes(6).toString('hex')}@@`;
    const parts: string[] = [];
    commands.forEach((c, i) => {
      if (c.length === 0) throw new TypeError('empty virsh command in a batch');
      parts.push(c.map(quoteWord).join(' '), `echo ${mark}${i}`);
    });
    let r: Awaited<ReturnType<Node['run']>>;
    try {
      r = await this.node.run(['virsh', '-c', this.uri, parts.join('; ')], {
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        env: { LC_ALL: 'C', LANG: 'C' },
        reject: false,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (e) {
      throw toLibvirtError(e, operation, this.where);
    }
    if (r.exitCode !== 0 || /^error:/m.test(r.stderr)) {
      throw toLibvirtError(
        new CommandError({ ...r, exitCode: r.exitCode === 0 ? 1 : r.exitCode }),
        operation,
        this.where,
      );
    }
    const out: string[] = [];
    let rest = r.stdout;
    for (let i = 0; i < commands.length; i++) {
      const m = `${mark}${i}\n`;
      const at = rest.indexOf(m);
      if (at < 0)
        throw new LibvirtError('other', operation, `virsh printed no output mark ${i}`, this.where);
      // virsh ends each command's output with a newline of its own
      out.push(rest.slice(0, at).replace(/\n$/, ''));
      rest = rest.slice(at + m.length);
    }
    return out;
  }

  /**
   * Writes `content` into a private temp dir on the node, runs `fn(file)`, then removes the
   * dir (as VCL does for `virsh define FILE`).
   */
  async withNodeFile<T>(
    name: string,
    content: string,
    fn: (file: string) => Promise<T>,
  ): Promise<T> {
    const dir = `/tmp/v2v-load-virsh-${randomBytes(8).toString('hex')}`;
    await this.node.mkdir(dir, { mode: 0o700 });
    try {
      const file = path.posix.join(dir, name);
      await this.node.writeFileAtomic(file, content, { mode: 0o600 });
      return await fn(file);
    } finally {
      await this.node.remove(dir, { recursive: true });
    }
  }
}
