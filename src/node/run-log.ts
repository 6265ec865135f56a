/**
 * The debug line (`-v`) every node writes for each command it runs: where, the argv (quoted for
 * display, credentials redacted), how it ended, and how long it took.
 */
import {
  CommandError,
  CommandNotFoundError,
  type CommandOutcome,
  ConnectionLostError,
  describeArgv,
} from '../errors.js';
import type { Logger } from '../log/logger.js';

function ending(o: Pick<CommandOutcome, 'exitCode' | 'signal' | 'timedOut' | 'aborted'>): string {
  if (o.timedOut) return `timed out, killed${o.signal ? ` by ${o.signal}` : ''}`;
  if (o.aborted) return `aborted${o.signal ? `, killed by ${o.signal}` : ''}`;
  if (o.signal) return `killed by ${o.signal}`;
  return o.exitCode === undefined ? 'no exit status' : `exit ${o.exitCode}`;
}

/** `run on NODE: ARGV: exit 0 (12 ms)` */
export function runLine(node: string, argv: readonly string[], how: string, ms: number): string {
  return `run on ${node}: ${describeArgv(argv)}: ${how} (${Math.round(ms)} ms)`;
}

/** Logs a command that finished (whatever its exit status). */
export function logRunResult(
  log: Logger | undefined,
  node: string,
  argv: readonly string[],
  outcome: CommandOutcome,
): void {
  log?.debug(runLine(node, argv, ending(outcome), outcome.durationMs));
}

/** Logs a command whose run threw: not found, failed, timed out, aborted, connection lost. */
export function logRunError(
  log: Logger | undefined,
  node: string,
  argv: readonly string[],
  error: unknown,
  startedMs: number,
): void {
  if (!log) return;
  const ms = performance.now() - startedMs;
  let how: string;
  if (error instanceof CommandNotFoundError) how = 'command not found';
  else if (error instanceof CommandError) how = ending(error);
  else if (error instanceof ConnectionLostError) how = 'connection lost';
  else how = `failed: ${error instanceof Error ? error.message : String(error)}`;
  log.debug(runLine(node, argv, how, error instanceof CommandError ? error.durationMs : ms));
}

/** Runs `execute` and logs how the command ended, returned or thrown (every node's `run`). */
export async function runLogged<T extends CommandOutcome>(
  log: Logger | undefined,
  node: string,
  argv: readonly string[],
  execute: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  try {
    const result = await execute();
    logRunResult(log, node, argv, result);
    return result;
  } catch (e) {
    logRunError(log, node, argv, e, started);
    throw e;
  }
}
