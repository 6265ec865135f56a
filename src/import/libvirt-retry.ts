/**
 * libvirt calls of an import that outlive a libvirtd restart: while the daemon is down or
 * restarting, virsh fails to connect (or loses its connection); those failures are retried
 * with a growing pause for up to a minute, every other failure is thrown at once. A restart
 * keeps running domains, so an operation cut off in the middle is checked, not repeated blindly,
 * by the caller (see Importer).
 */
import type { Logger } from '../log/logger.js';
import { LibvirtError } from '../provisioning/libvirt/errors.js';
import { throwIfAborted } from '../run/run-scope.js';

/** What virsh says when it cannot reach libvirtd or loses it (English, LC_ALL=C). */
const UNREACHABLE =
  /Failed to connect socket|failed to connect to the hypervisor|End of file while reading data|Cannot recv data|client socket is closed|Connection reset by peer|Broken pipe|Cannot write data|no connection driver available|received hangup event/i;

/** True when `err` (or its cause chain) says libvirtd was unreachable, not that it refused. */
export function isLibvirtUnreachable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e && depth < 8; depth++) {
    if (e instanceof LibvirtError && e.kind === 'other' && UNREACHABLE.test(e.detail)) return true;
    const stderr = (e as { stderr?: unknown }).stderr;
    if (typeof stderr === 'string' && UNREACHABLE.test(stderr)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export interface RetryOptions {
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  /** Give up after this long (default 60 s). */
  deadlineMs?: number | undefined;
}

/** Runs `fn`, again while libvirtd is unreachable, until the deadline. */
export async function withLibvirtRetry<T>(
  what: string,
  fn: () => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 60_000);
  let pause = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isLibvirtUnreachable(e) || Date.now() + pause > deadline) throw e;
      opts.log?.warn(`${what}: libvirtd unreachable (attempt ${attempt}); retrying`);
      await new Promise((r) => setTimeout(r, pause));
      throwIfAborted(opts.signal);
      pause = Math.min(pause * 2, 4000);
    }
  }
}
