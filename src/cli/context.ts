import type { DependencyContainer } from 'tsyringe';
import type { Logger } from '../log/logger.js';
import type { RunScope } from '../run/run-scope.js';

/** What every command handler gets: the root container and where to write. */
export interface CliContext {
  root: DependencyContainer;
  /**
   * This invocation's AbortSignal and cleanup stack (also in every run container, as
   * TOKENS.AbortSignal and TOKENS.Cleanup). The stack runs after the handler, whatever happened.
   */
  scope: RunScope;
  log: Logger;
  /** Machine or human output (stdout). */
  out: (text: string) => void;
  /** Sets the process exit status of this invocation. */
  setExit: (status: number) => void;
}

/** Global options every command has. */
export interface GlobalArgs {
  json: boolean;
  verbose: number;
  quiet: number;
}
