/**
 * Scratch folders (`/var/tmp/v2v-load-convert-…`, an OVA's extraction, an ISO's drivers …)
 * carry their owner in their name: `PREFIX` + a tag of the host (and pid namespace) that runs
 * v2v-load + the pid of its process + 12 random hex digits. A run killed with SIGKILL (or by a
 * power cut) cannot remove its scratch; the next run on the same host removes the scratch
 * folders whose owner process is gone (`sweepDeadScratch`), on each node it works on. It leaves alone a folder of
 * another host (its pid means nothing here) and one of a live process, even an unrelated one
 * that reuses the pid: such a folder is kept, never removed under a live run.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from '../log/logger.js';
import type { FileOps } from './node.js';
import { pidAlive } from './pid-alive.js';

/** The folders where scratch is made, unless a run is told another (`--tmp-dir`). */
export const SCRATCH_PARENTS = ['/var/tmp', '/tmp'] as const;

/** The scratch parents, with a run's own `--tmp-dir` (an OVA's extraction) when it has one. */
export function scratchParents(tmpDir?: string | undefined): string[] {
  return [...new Set([...SCRATCH_PARENTS, ...(tmpDir?.trim() ? [path.resolve(tmpDir)] : [])])];
}

let pidNamespace: string | undefined;

/** This process's pid namespace (`pid:[INODE]`), or '' where /proc does not say. */
function ownPidNamespace(): string {
  if (pidNamespace === undefined) {
    try {
      pidNamespace = fs.readlinkSync('/proc/self/ns/pid');
    } catch {
      pidNamespace = '';
    }
  }
  return pidNamespace;
}

/**
 * 8 hex digits naming where a pid means one process: the host that runs v2v-load (its
 * hostname) and its pid namespace (a container sharing /var/tmp has another), hashed.
 */
export function hostTag(hostname = os.hostname(), pidNamespace = ownPidNamespace()): string {
  return createHash('sha256').update(`${hostname}\0${pidNamespace}`).digest('hex').slice(0, 8);
}

/**
 * A fresh scratch folder name for this process. Make it with the node's `mkdir` (a file
 * operation, which an interruption does not cut in half) and register its removal right after:
 * unlike `mktemp -d` run as a command, a run interrupted at that moment cannot leave a folder
 * whose name it never learnt; and a run killed outright leaves one that names its owner.
 */
export function scratchName(prefix: string): string {
  return `${prefix}${hostTag()}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

const SCRATCH_NAME = /^v2v-load-[a-z]+(?:-[a-z]+)*-([0-9a-f]{8})-([1-9][0-9]{0,9})-[0-9a-f]{12}$/;

/** The owner a scratch folder's name carries, or undefined for any other name. */
export function scratchOwner(name: string): { host: string; pid: number } | undefined {
  const m = SCRATCH_NAME.exec(name);
  return m ? { host: m[1] as string, pid: Number(m[2]) } : undefined;
}

export interface SweepOptions {
  /** Where to look (default: /var/tmp and /tmp). */
  parents?: readonly string[] | undefined;
  log?: Logger | undefined;
  /** Liveness of a pid of this host (default: pidAlive). */
  alive?: ((pid: number) => boolean | Promise<boolean>) | undefined;
}

/**
 * Removes, in `parents` on `node`, the scratch folders of this host whose owner process is
 * gone. Returns their paths. Best effort: a folder that cannot be listed or removed is left.
 */
export async function sweepDeadScratch(
  node: FileOps,
  options: SweepOptions = {},
): Promise<string[]> {
  const here = hostTag();
  const alive = options.alive ?? pidAlive;
  const removed: string[] = [];
  for (const parent of new Set(options.parents ?? SCRATCH_PARENTS)) {
    const entries = await node.list(parent).catch(() => []);
    for (const e of entries) {
      const owner = scratchOwner(e.name);
      if (!owner || owner.host !== here || owner.pid === process.pid) continue;
      if (e.type !== 'directory' || (await alive(owner.pid))) continue;
      const dir = path.posix.join(parent, e.name);
      try {
        await node.remove(dir, { recursive: true });
        removed.push(dir);
        options.log?.info(`removed ${dir}: scratch of a run that is gone (pid ${owner.pid})`);
      } catch (err) {
        options.log?.debug(`could not remove the dead run's scratch ${dir}: ${String(err)}`);
      }
    }
  }
  return removed;
}
