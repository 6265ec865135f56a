/**
 * One run's scope: the AbortSignal every command of the run listens to, and the cleanup stack
 * every resource of the run is registered with. A signal (SIGINT, SIGTERM) does not exit the
 * process: it aborts the run; commands in flight are killed (locally their process group, on an
 * SSH node the remote process group, then the channel), the code awaiting them throws the
 * {@link InterruptedError}, `finally` blocks and the cleanup stack run, and only then does the
 * CLI exit (130 or 143).
 */
import { InterruptedError, type InterruptSignal } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { CleanupStack } from './cleanup.js';

export class RunScope {
  private readonly controller = new AbortController();
  readonly cleanup: CleanupStack;

  constructor(log?: Logger) {
    this.cleanup = new CleanupStack(log);
  }

  /** Aborts when the run is interrupted; its reason is the {@link InterruptedError}. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The interruption, once the run was interrupted. */
  get interruption(): InterruptedError | undefined {
    const r: unknown = this.controller.signal.reason;
    return this.controller.signal.aborted && r instanceof InterruptedError ? r : undefined;
  }

  /** Interrupts the run (the first call wins; later calls do nothing). */
  interrupt(signal: InterruptSignal): void {
    if (!this.controller.signal.aborted) this.controller.abort(new InterruptedError(signal));
  }
}

/**
 * What to throw when `signal` aborted: its reason when that is an Error (for a run's signal,
 * the {@link InterruptedError}), else a generic one.
 */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(`aborted: ${String(r)}`);
}

/** Throws the abort reason when `signal` has aborted (for loops that run no command). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}
