/**
 * Runs `virsh -c URI ...` on a node, with a timeout, in the C locale (libvirt's messages in
 * English, so {@link classifyLibvirtError} can read them). Failures become {@link LibvirtError}.
 */

import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Node } from '../../node/node.js';
import { toLibvirtError } from './errors.js';

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
