import { randomBytes } from 'node:crypto';
import * as path from 'node:path';

/**
 * A hidden temporary name next to `p`, so the final rename onto `p` stays on one file system
 * and is atomic. A crash leaves only `.NAME.tmp-XXXX` files, never a half-written `NAME`.
 */
export function tempSibling(p: string): string {
  return path.join(path.dirname(p), `.${path.basename(p)}.tmp-${randomBytes(6).toString('hex')}`);
}

/**
 * A fresh scratch folder name `PREFIX` + 12 hex digits. Make it with the node's `mkdir` (a file
 * operation, which an interruption does not cut in half) and register its removal right after:
 * unlike `mktemp -d` run as a command, a run interrupted at that moment cannot leave a folder
 * whose name it never learnt.
 */
export function scratchName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}
