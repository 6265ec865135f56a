/**
 * SIGINT and SIGTERM for the `v2v-load` process. The first signal interrupts the run (see
 * RunScope): commands are killed, cleanup runs, the CLI exits 130 (SIGINT) or 143 (SIGTERM).
 * A second signal while that goes on only says so; a third exits at once with the first
 * signal's status, killing local process groups still running but leaving temporary files
 * (and, on an SSH node, possibly a command) behind.
 */
import { INTERRUPT_SIGNALS, type InterruptSignal } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { RunScope } from './run-scope.js';

/** Signals received before the process exits at once, cleanup or not. */
export const FORCE_AFTER = 3;

/** Installs the handlers; returns the function that removes them. */
export function handleProcessSignals(
  scope: RunScope,
  log: Logger,
  exit: (status: number) => never = (status) => process.exit(status),
): () => void {
  let received = 0;
  const handlers = Object.keys(INTERRUPT_SIGNALS).map((name) => {
    const sig = name as InterruptSignal;
    const handler = () => {
      received++;
      if (received === 1) {
        log.warn(`${sig} received: stopping and cleaning up (send it twice more to exit at once)`);
        scope.interrupt(sig);
      } else if (received < FORCE_AFTER) {
        log.warn('cleaning up; signal again to force exit (temporary files may be left behind)');
      } else {
        log.error('forced exit: temporary files may be left behind');
        // process.exit runs the 'exit' handlers: local process groups still running are killed.
        exit(INTERRUPT_SIGNALS[scope.interruption?.signal ?? sig]);
      }
    };
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  return () => {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  };
}
