/**
 * libvirt errors as typed values. {@link classifyLibvirtError} is the ONE place that reads
 * libvirt's stderr texts; everything above it looks at {@link LibvirtError.kind}.
 */
import { CommandError, V2vError } from '../../errors.js';

/** What went wrong, as far as libvirt's message tells. */
export type LibvirtErrorKind =
  | 'not-found'
  | 'already-exists'
  | 'operation-invalid'
  | 'unsupported'
  | 'no-agent'
  | 'invalid-xml'
  | 'other';

/** The order matters: the first pattern that matches decides. */
const PATTERNS: readonly [LibvirtErrorKind, RegExp][] = [
  [
    'no-agent',
    /QEMU guest agent is not (connected|configured)|guest agent is not (responding|available)/i,
  ],
  [
    'not-found',
    /Domain not found|failed to get domain|Domain snapshot not found|metadata not found|no domain with matching|no domain snapshot with matching|Storage (pool|volume) not found|Network not found|is not a known (interface|disk|device)|no (disk|interface) with (target|path)/i,
  ],
  ['already-exists', /already exists/i],
  [
    'invalid-xml',
    /XML error|failed to parse|XML document|\(domain_definition\)|\(domain_snapshot\)|Document is empty|expected '>'|XML description is invalid|schemas? (validity|validation)/i,
  ],
  [
    'operation-invalid',
    /Requested operation is not valid|domain is not running|domain is already running|Domain is already active|is not active|cannot delete inactive domain|operation is not valid/i,
  ],
  [
    'unsupported',
    /this function is not supported|unsupported configuration|argument unsupported|Operation not supported/i,
  ],
];

/** The stable `code` of each kind (for `--json` and logs). */
const CODES: Record<LibvirtErrorKind, string> = {
  'not-found': 'LIBVIRT_NOT_FOUND',
  'already-exists': 'LIBVIRT_ALREADY_EXISTS',
  'operation-invalid': 'LIBVIRT_OPERATION_INVALID',
  unsupported: 'LIBVIRT_UNSUPPORTED',
  'no-agent': 'LIBVIRT_NO_AGENT',
  'invalid-xml': 'LIBVIRT_INVALID_XML',
  other: 'LIBVIRT_ERROR',
};

const HINTS: Record<LibvirtErrorKind, string | undefined> = {
  'not-found': 'list the domains with `v2v-load domain list` (check --connect and --host)',
  'already-exists': 'pick another name, or undefine the existing domain first',
  'operation-invalid': 'check the domain state with `v2v-load domain state NAME`',
  unsupported: 'this hypervisor or configuration does not offer the operation',
  'no-agent':
    'install and start qemu-guest-agent in the guest and add a guest-agent channel to the domain',
  'invalid-xml': 'fix the XML (libvirt names the line) and try again',
  other: undefined,
};

/** Kind of a libvirt error message (virsh's stderr). */
export function classifyLibvirtError(stderr: string): LibvirtErrorKind {
  for (const [kind, re] of PATTERNS) if (re.test(stderr)) return kind;
  return 'other';
}

/** libvirt refused or failed an operation. The cause is the {@link CommandError} of virsh. */
export class LibvirtError extends V2vError {
  override readonly code: string;
  constructor(
    /** What went wrong. */
    readonly kind: LibvirtErrorKind,
    /** What was being done, e.g. `start domain "web01"`. */
    readonly operation: string,
    /** libvirt's own message (virsh's `error:` lines, joined). */
    readonly detail: string,
    /** The libvirt URI and the node, e.g. `qemu:///system on local`. */
    readonly where: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(`${operation} (${where}) failed: ${detail}`, {
      hint: options.hint ?? HINTS[kind],
      cause: options.cause,
    });
    this.code = CODES[kind];
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), kind: this.kind, operation: this.operation, detail: this.detail };
  }
}

/** The `error:` lines of virsh's stderr, joined into one message. */
export function libvirtDetail(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== '(null)' && l !== '^');
  const errors = lines.filter((l) => l.startsWith('error:')).map((l) => l.slice(6).trim());
  return (errors.length ? errors : lines).join(': ') || 'no message from libvirt';
}

/** Turns a failed virsh run into a {@link LibvirtError}; other errors pass through. */
export function toLibvirtError(e: unknown, operation: string, where: string): unknown {
  if (!(e instanceof CommandError) || e.timedOut || e.aborted || e.exitCode === undefined) {
    return e;
  }
  if (e.code === 'COMMAND_NOT_FOUND') return e;
  return new LibvirtError(
    classifyLibvirtError(e.stderr),
    operation,
    libvirtDetail(e.stderr),
    where,
    {
      cause: e,
    },
  );
}

function hasKind(err: unknown, kind: LibvirtErrorKind): boolean {
  let e: unknown = err;
  for (let depth = 0; e && depth < 16; depth++) {
    if (e instanceof LibvirtError && e.kind === kind) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** True when `err` or an error in its cause chain says the object does not exist. */
export function isNotFound(err: unknown): boolean {
  return hasKind(err, 'not-found');
}

/** True when `err` or an error in its cause chain says the object exists already. */
export function isAlreadyExists(err: unknown): boolean {
  return hasKind(err, 'already-exists');
}

/** True when `err` or an error in its cause chain says the operation is not valid now. */
export function isOperationInvalid(err: unknown): boolean {
  return hasKind(err, 'operation-invalid');
}

/** True when `err` or an error in its cause chain says the guest agent is missing. */
export function isNoAgent(err: unknown): boolean {
  return hasKind(err, 'no-agent');
}
