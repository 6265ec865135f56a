import { CommandError, CommandNotFoundError, type CommandOutcome } from '../errors.js';
import type { RunOptions, RunResult } from './node.js';

const DEFAULT_MAX_BUFFER = 256 * 1024 * 1024;

/** Collects one output stream: keeps at most `max` bytes, forwards every chunk to `onChunk`. */
export class OutputCollector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(
    private readonly max: number = DEFAULT_MAX_BUFFER,
    private readonly onChunk?: (chunk: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    this.onChunk?.(chunk);
    if (this.size >= this.max) {
      this.truncated = true;
      return;
    }
    const room = this.max - this.size;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

export function collectors(options: RunOptions): { out: OutputCollector; err: OutputCollector } {
  return {
    out: new OutputCollector(options.maxBuffer, options.onStdout),
    err: new OutputCollector(options.maxBuffer, options.onStderr),
  };
}

/** Exit code 127 with "not found" from the shell, or ENOENT from spawn. */
function looksNotFound(o: CommandOutcome): boolean {
  return o.exitCode === 127 && /not found|No such file/i.test(o.stderr);
}

/**
 * Turns what a command did into its result, or throws the matching error: timeouts and aborts
 * always throw, a non-zero exit throws unless `reject` is false.
 */
export function settle(
  outcome: CommandOutcome,
  stdoutBytes: Buffer,
  options: RunOptions,
): RunResult {
  if (outcome.timedOut || outcome.aborted) throw new CommandError(outcome);
  const failed = outcome.exitCode !== 0;
  if (failed && looksNotFound(outcome)) {
    throw new CommandNotFoundError(outcome, {
      hint: `install \`${outcome.argv[0]}\` on ${outcome.node}`,
    });
  }
  if (failed && options.reject !== false) throw new CommandError(outcome);
  return { ...outcome, stdoutBytes };
}
