/**
 * The error taxonomy of v2v-load.
 *
 * Every error the tool raises on purpose is a {@link V2vError}: it carries a stable `code`, the
 * process exit code the CLI uses for it, and a `hint` that says what to do. Messages name the
 * input (the file, the option, the host, the command) and the problem.
 */

import { redactErrorChain, redactSecrets } from './log/redact.js';

/** Exit codes of the `v2v-load` command (documented in README.md). */
export const ExitCode = {
  /** Everything asked for was done. */
  Ok: 0,
  /** The operation failed (a command failed, a check failed, an image is bad, ...). */
  Failure: 1,
  /** The command line is wrong: unknown option, missing argument, bad value. */
  Usage: 2,
  /** The node could not be reached or its host key is not trusted. */
  NodeUnreachable: 3,
  /** Interrupted by SIGINT (Ctrl-C); what the run made was cleaned up. */
  Interrupted: 130,
  /** Stopped by SIGTERM; what the run made was cleaned up. */
  Terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface V2vErrorOptions {
  hint?: string | undefined;
  cause?: unknown;
}

/** Base class of every error v2v-load raises on purpose. */
export class V2vError extends Error {
  /** Stable machine-readable code, e.g. `USAGE`, `COMMAND_FAILED`. */
  readonly code: string = 'V2V_ERROR';
  /** Exit status the CLI uses when this error ends a command. */
  readonly exitStatus: ExitCode = ExitCode.Failure;
  /** What the user can do about it. */
  readonly hint: string | undefined;

  constructor(message: string, options: V2vErrorOptions = {}) {
    // No credential gets out through a message, a hint or a wrapped error (see log/redact.ts).
    super(
      redactSecrets(message),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    if (options.cause !== undefined) redactErrorChain(options.cause);
    this.name = new.target.name;
    this.hint = options.hint === undefined ? undefined : redactSecrets(options.hint);
  }

  /** A plain object for `--json` output. */
  toJSON(): Record<string, unknown> {
    return {
      error: this.name,
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
    };
  }
}

/** The command line or an API argument is wrong. */
export class UsageError extends V2vError {
  override readonly code = 'USAGE';
  override readonly exitStatus = ExitCode.Usage;
}

/** The signals that interrupt a run, and the exit status each gives (128 + its number). */
export const INTERRUPT_SIGNALS = {
  SIGINT: ExitCode.Interrupted,
  SIGTERM: ExitCode.Terminated,
} as const;
export type InterruptSignal = keyof typeof INTERRUPT_SIGNALS;

/**
 * The run was interrupted by a signal: it is the abort reason of the run's AbortSignal, so
 * whatever was waiting throws it; cleanup ran; the CLI exits 130 (SIGINT) or 143 (SIGTERM).
 */
export class InterruptedError extends V2vError {
  override readonly code = 'INTERRUPTED';
  override readonly exitStatus: ExitCode;
  constructor(
    readonly signal: InterruptSignal,
    options: V2vErrorOptions = {},
  ) {
    super(`interrupted by ${signal}`, options);
    this.exitStatus = INTERRUPT_SIGNALS[signal];
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), signal: this.signal };
  }
}

/** What a finished (or killed) command left behind; shared by results and errors. */
export interface CommandOutcome {
  /** The argv that ran, exactly as given. */
  argv: readonly string[];
  /** Where it ran: `local` or `ssh://user@host:port`. */
  node: string;
  /** Exit code, or undefined when the process was killed by a signal or never started. */
  exitCode: number | undefined;
  /** Signal that ended the process, if any (e.g. `SIGKILL`). */
  signal: string | undefined;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** True when the command ran past its timeout and was killed. */
  timedOut: boolean;
  /** True when the caller's AbortSignal fired and the command was killed. */
  aborted: boolean;
}

/** Formats an argv for messages (not for execution): words with spaces are quoted. */
export function describeArgv(argv: readonly string[]): string {
  return argv
    .map((a) => redactSecrets(/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)))
    .join(' ');
}

function lastLines(text: string, count: number): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-count).join('\n');
}

/** A command ran and failed: non-zero exit, killed by a signal, timed out or aborted. */
export class CommandError extends V2vError implements CommandOutcome {
  override readonly code: string = 'COMMAND_FAILED';
  readonly argv: readonly string[];
  readonly node: string;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
  readonly aborted: boolean;

  constructor(outcome: CommandOutcome, options: V2vErrorOptions = {}) {
    super(CommandError.describe(outcome), options);
    // Kept as run, except a password typed into a URL (see log/redact.ts).
    this.argv = outcome.argv.map(redactSecrets);
    this.node = outcome.node;
    this.exitCode = outcome.exitCode;
    this.signal = outcome.signal;
    this.stdout = redactSecrets(outcome.stdout);
    this.stderr = redactSecrets(outcome.stderr);
    this.durationMs = outcome.durationMs;
    this.timedOut = outcome.timedOut;
    this.aborted = outcome.aborted;
  }

  private static describe(o: CommandOutcome): string {
    const cmd = describeArgv(o.argv);
    const where = o.node === 'local' ? '' : ` on ${o.node}`;
    let why: string;
    if (o.timedOut) why = `timed out after ${o.durationMs} ms and was killed`;
    else if (o.aborted) why = 'was aborted';
    else if (o.signal) why = `was killed by ${o.signal}`;
    else why = `exited with code ${o.exitCode}`;
    const err = lastLines(o.stderr, 5);
    return `\`${cmd}\`${where} ${why}${err ? `: ${err}` : ''}`;
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      argv: this.argv,
      node: this.node,
      exitCode: this.exitCode,
      signal: this.signal,
      stderr: this.stderr,
      durationMs: this.durationMs,
      timedOut: this.timedOut,
      aborted: this.aborted,
    };
  }
}

/** A program the tool needs is not installed on the node. */
export class CommandNotFoundError extends CommandError {
  override readonly code = 'COMMAND_NOT_FOUND';
}

/** The node cannot be reached: connection refused, DNS, authentication, lost connection. */
export class NodeUnreachableError extends V2vError {
  override readonly code: string = 'NODE_UNREACHABLE';
  override readonly exitStatus = ExitCode.NodeUnreachable;
  /** True when trying again may help (connection refused or dropped); false for key or login problems. */
  readonly retryable: boolean;
  constructor(
    readonly node: string,
    message: string,
    options: V2vErrorOptions & { retryable?: boolean } = {},
  ) {
    super(message, options);
    this.retryable = options.retryable ?? false;
  }
}

/** The connection to the node dropped while a command ran; the command's fate is unknown. */
export class ConnectionLostError extends NodeUnreachableError {
  override readonly code = 'CONNECTION_LOST';
  constructor(
    node: string,
    readonly argv: readonly string[] | undefined,
    options: V2vErrorOptions = {},
  ) {
    super(
      node,
      argv
        ? `connection to ${node} was lost while \`${describeArgv(argv)}\` ran; whether it finished is unknown`
        : `connection to ${node} was lost`,
      {
        hint: 'check that the host and its sshd are up; the next command reconnects',
        retryable: true,
        ...options,
      },
    );
  }
}

/** The node's host key is not in the known_hosts file (and accepting new keys was not asked). */
export class UnknownHostKeyError extends NodeUnreachableError {
  override readonly code = 'HOST_KEY_UNKNOWN';
  constructor(
    node: string,
    readonly fingerprint: string,
    knownHostsFile: string,
  ) {
    super(node, `host key of ${node} (${fingerprint}) is not in ${knownHostsFile}`, {
      hint:
        'verify the fingerprint out of band, then rerun with --accept-new-host-key ' +
        '(or add the key to the known_hosts file)',
    });
  }
}

/** The node's host key differs from the one on record: possibly a man-in-the-middle. */
export class HostKeyMismatchError extends NodeUnreachableError {
  override readonly code = 'HOST_KEY_MISMATCH';
  constructor(
    node: string,
    readonly fingerprint: string,
    readonly expected: string,
  ) {
    super(
      node,
      `HOST KEY MISMATCH for ${node}: it presented ${fingerprint} but ${expected} is on record`,
      {
        hint:
          'someone may be intercepting the connection, or the host was reinstalled; ' +
          'if the change is expected, remove the old key from the known_hosts file',
      },
    );
  }
}

/** A file operation on a node failed. */
export class NodeFileError extends V2vError {
  override readonly code: string = 'FILE_ERROR';
  constructor(
    readonly node: string,
    readonly operation: string,
    readonly path: string,
    reason: string,
    options: V2vErrorOptions = {},
  ) {
    super(
      `${operation} ${path}${node === 'local' ? '' : ` on ${node}`} failed: ${reason}`,
      options,
    );
  }
}

/** True when `err`, or an error in its cause chain, is of class `cls`. */
export function hasCause<T extends Error>(
  err: unknown,
  cls: abstract new (...args: never[]) => T,
): boolean {
  let e: unknown = err;
  for (let depth = 0; e && depth < 16; depth++) {
    if (e instanceof cls) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** A source's metadata (vmx, OVF, OVA, libvirt XML) is broken, hostile or unsupported. */
export class MetadataError extends V2vError {
  override readonly code = 'METADATA_INVALID';
  constructor(
    /** The file (or archive member as `archive.ova:member.ovf`) at fault. */
    readonly file: string,
    problem: string,
    options: V2vErrorOptions & { line?: number | undefined } = {},
  ) {
    super(`${file}${options.line ? `:${options.line}` : ''}: ${problem}`, options);
    this.line = options.line;
  }
  readonly line: number | undefined;
}
