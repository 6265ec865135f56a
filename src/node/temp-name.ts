import { randomBytes } from 'node:crypto';
import * as path from 'node:path';

/**
 * A hidden temporary name next to `p`, so the final rename onto `p` stays on one file system
 * and is atomic. A crash leaves only `.NAME.tmp-XXXX` files, never a half-written `NAME`.
 */
export function tempSibling(p: string): string {
  return path.join(path.dirname(p), `.${path.basename(p)}.tmp-${randomBytes(6).toString('hex')}`);
}
