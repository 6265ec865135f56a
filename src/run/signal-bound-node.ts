/**
 * A node with the run's AbortSignal bound to every command: whoever runs a command on it
 * (QemuImg, a storage mode, a reader) has it killed when the run is interrupted, without
 * passing the signal by hand. The error thrown is then the abort reason (the run's
 * InterruptedError, its cause the command's CommandError), so no caller mistakes an
 * interruption for a failed command. File operations are not bound: cleanup uses them after
 * the abort.
 */
import type { Node, RunOptions, RunResult } from '../node/node.js';
import { abortReason } from './run-scope.js';

/**
 * `node` with `signal` added to each `run` (combined with the caller's own signal, if any).
 * Every other member is the node's own (a Proxy, so members added to Node later pass through).
 */
export function bindSignal(node: Node, signal: AbortSignal): Node {
  const run = async (argv: readonly string[], options: RunOptions = {}): Promise<RunResult> => {
    if (signal.aborted) throw abortReason(signal);
    const combined = options.signal ? AbortSignal.any([signal, options.signal]) : signal;
    try {
      return await node.run(argv, { ...options, signal: combined });
    } catch (e) {
      if (signal.aborted) throw abortReason(signal);
      throw e;
    }
  };
  return new Proxy(node, {
    get(target, prop) {
      if (prop === 'run') return run;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
