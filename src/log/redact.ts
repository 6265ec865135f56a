/**
 * Keeps credentials out of everything the tool prints: messages, log lines, `--json` output and
 * the errors it wraps. v2v-load never asks for a password, but a user can still type one into a
 * URL (`ssh://root:secret@vmhost`, `qemu+ssh://root:secret@vmhost/system`), and tools echo it.
 */

/** What a password is replaced with. */
export const REDACTED = '***';

/**
 * `scheme://user:password@`: the password runs to the last `@` before a space, `/`, `?` or
 * `#`, so a password holding `@` is hidden whole (at worst, more than the password is hidden).
 */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*):[^\s/?#]*@/gi;

/** `text` with the password of every URL in it replaced by `***` (the user name stays). */
export function redactSecrets(text: string): string {
  return text.includes('://') ? text.replace(URL_PASSWORD, `$1:${REDACTED}@`) : text;
}

/**
 * A value the user typed as a URL, fit to quote in a message even when it does not parse:
 * whatever stands between the scheme (or the start) and the last `@` loses everything after
 * its first `:`. `root:secret@vmhost` becomes `root:***@vmhost`.
 */
export function redactUrlInput(value: string): string {
  const at = value.lastIndexOf('@');
  if (at < 0) return redactSecrets(value);
  const scheme = value.indexOf('://');
  const start = scheme >= 0 && scheme < at ? scheme + 3 : 0;
  const userinfo = value.slice(start, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return redactSecrets(value);
  return `${value.slice(0, start)}${userinfo.slice(0, colon)}:${REDACTED}${value.slice(at)}`;
}

/** Fields of foreign errors that repeat a command line or an input (execa, child_process, URL). */
const ECHO_FIELDS = [
  'message',
  'stack',
  'shortMessage',
  'originalMessage',
  'command',
  'escapedCommand',
  'input',
  'spawnargs',
  'path',
  'stdout',
  'stderr',
  'all',
];

/**
 * Redacts, in place, the messages and echoed command lines of `err` and of every error in its
 * cause chain, so that wrapping an error never smuggles a credential into the output.
 */
export function redactErrorChain(err: unknown): void {
  const seen = new Set<unknown>();
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 16 && !seen.has(e); depth++) {
    seen.add(e);
    const obj = e as Record<string, unknown>;
    for (const field of ECHO_FIELDS) {
      try {
        const v = obj[field];
        if (typeof v === 'string') {
          const r = redactSecrets(v);
          if (r !== v) obj[field] = r;
        } else if (Array.isArray(v) && v.some((x) => typeof x === 'string' && x.includes('://'))) {
          obj[field] = v.map((x) => (typeof x === 'string' ? redactSecrets(x) : x));
        }
      } catch {
        // a read-only or frozen field: leave it
      }
    }
    e = obj.cause;
  }
}
