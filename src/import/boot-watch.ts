/**
 * `import --verify-boot`: watches the imported domain itself (not a throwaway copy) boot, on
 * the file its serial console is logged to, until a login prompt or systemd's multi-user
 * target shows, the domain stops, or the timeout passes. A libvirtd restart meanwhile is
 * ridden out (the domain keeps running).
 */
import { type BootVerdict, DEFAULT_BOOT_PATTERN } from '../convert/verify-boot.js';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import type { Domain } from '../provisioning/libvirt/domain.js';
import { throwIfAborted } from '../run/run-scope.js';
import { isLibvirtUnreachable } from './libvirt-retry.js';

export interface WatchOptions {
  timeoutMs: number;
  pattern?: RegExp | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  /** Poll interval (default 1 s). */
  intervalMs?: number | undefined;
}

export async function watchBoot(
  node: Node,
  domain: Domain,
  consoleLog: string,
  opts: WatchOptions,
): Promise<BootVerdict> {
  const pattern = opts.pattern ?? DEFAULT_BOOT_PATTERN;
  const t0 = performance.now();
  let text = '';
  for (let polls = 1; ; polls++) {
    throwIfAborted(opts.signal);
    if (await node.stat(consoleLog)) {
      // Colours and cursor moves (systemd's status lines) out, so the verdict reads as text.
      text = (await node.readFile(consoleLog))
        .toString('utf8')
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
        .replaceAll('\r', '');
    }
    const m = pattern.exec(text);
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    if (m) return { booted: true, matched: m[0].trim(), seconds, consoleTail: tail(text) };
    if (performance.now() - t0 > opts.timeoutMs) {
      return {
        booted: false,
        seconds,
        reason: `no login prompt on the console within ${opts.timeoutMs / 1000} s`,
        consoleTail: tail(text),
      };
    }
    if (polls % 5 === 0) {
      try {
        const { state } = await domain.getState();
        if (state !== 'running' && state !== 'paused') {
          return {
            booted: false,
            seconds,
            reason: `the domain stopped (${state}) before a login prompt`,
            consoleTail: tail(text),
          };
        }
      } catch (e) {
        if (!isLibvirtUnreachable(e)) throw e;
        opts.log?.warn(`boot check of ${domain.name}: libvirtd unreachable; still watching`);
      }
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1000));
  }
}

function tail(text: string, lines = 15): string {
  return text.replaceAll('\r', '').trimEnd().split('\n').slice(-lines).join('\n');
}
