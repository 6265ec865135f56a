import { redactSecrets } from './redact.js';

/** Diagnostics go to stderr, so stdout stays clean for `--json` output. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Every log level, least severe first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const ORDER: readonly LogLevel[] = LOG_LEVELS;

/** Writes lines at or above `level` to a stream (stderr by default). */
export class StreamLogger implements Logger {
  constructor(
    private readonly level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
  ) {}

  private emit(level: LogLevel, message: string): void {
    if (ORDER.indexOf(level) < ORDER.indexOf(this.level)) return;
    const prefix = level === 'info' ? '' : `${level}: `;
    // No credential reaches a log line, whoever wrote the message (see redact.ts).
    this.write(`v2v-load: ${prefix}${redactSecrets(message)}\n`);
  }

  debug(message: string): void {
    this.emit('debug', message);
  }
  info(message: string): void {
    this.emit('info', message);
  }
  warn(message: string): void {
    this.emit('warn', message);
  }
  error(message: string): void {
    this.emit('error', message);
  }
}

/** -v gives debug, -q warnings and errors only, -qq errors only. */
export function levelFromFlags(verbose: number, quiet: number): LogLevel {
  if (quiet >= 2) return 'error';
  if (quiet === 1) return 'warn';
  if (verbose >= 1) return 'debug';
  return 'info';
}
