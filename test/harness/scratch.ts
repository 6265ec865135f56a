/** The scratch folders (src/node/scratch.ts) in /var/tmp and /tmp that name one of `pids`. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SCRATCH_PARENTS, scratchOwner } from '../../src/node/scratch.js';

export async function scratchOf(pids: readonly number[]): Promise<string[]> {
  const out: string[] = [];
  for (const parent of SCRATCH_PARENTS) {
    for (const f of await fs.readdir(parent)) {
      const owner = scratchOwner(f);
      if (owner && pids.includes(owner.pid)) out.push(path.join(parent, f));
    }
  }
  return out;
}
