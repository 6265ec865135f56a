/**
 * The run's cleanup stack, as virt-v2v keeps one: a resource (temporary file, partial output,
 * extraction directory, half-defined domain) is registered where it is acquired, and the stack
 * runs at the end of the run, on success, failure or interruption alike. A step whose resource
 * was handed over (renamed into place, kept as the output) is dismissed.
 */
import type { Logger } from '../log/logger.js';

/** One registered cleanup step. */
export interface CleanupHandle {
  /** The resource was handed over: the step will not run. */
  dismiss(): void;
  /** Runs the step now (once; later calls and the stack's own run do nothing). Never throws. */
  runNow(): Promise<void>;
}

interface Step {
  label: string;
  fn: () => Promise<void> | void;
}

/**
 * A last-in-first-out stack of cleanup steps. {@link run} runs every step even when one fails;
 * failures are logged as warnings, never thrown (cleanup must not hide the run's own error).
 */
export class CleanupStack {
  private readonly steps: Step[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly log?: Logger) {}

  /** Number of steps still registered. */
  get size(): number {
    return this.steps.length;
  }

  /**
   * Registers `fn` to run when the stack runs. `label` says what it undoes, for the log
   * (e.g. `remove partial output /images/.web.qcow2.tmp-1a2b`).
   */
  defer(label: string, fn: () => Promise<void> | void): CleanupHandle {
    const step: Step = { label, fn };
    this.steps.push(step);
    let done = false;
    const take = (): boolean => {
      if (done) return false;
      done = true;
      const i = this.steps.lastIndexOf(step);
      if (i >= 0) this.steps.splice(i, 1);
      return true;
    };
    return {
      dismiss: () => {
        take();
      },
      runNow: async () => {
        if (take()) await this.runStep(step);
      },
    };
  }

  /**
   * Runs every registered step, last registered first, each once. Steps registered while it
   * runs run too. Concurrent calls share one run. Never throws.
   */
  run(): Promise<void> {
    this.running ??= (async () => {
      try {
        for (let step = this.steps.pop(); step; step = this.steps.pop()) {
          await this.runStep(step);
        }
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async runStep(step: Step): Promise<void> {
    this.log?.debug(`cleanup: ${step.label}`);
    try {
      await step.fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.log?.warn(`cleanup failed: ${step.label}: ${msg}`);
    }
  }
}
