/**
 * A named lock on a node: a directory made with mkdir (atomic, fails when it exists) holding
 * `owner.json` {host, pid, time, token, what}. One load of a computer at a time, one conversion
 * of a master at a time, across processes and over SSH. A lock whose owner process is dead
 * (same host) or older than `staleMs` (another host) is taken over.
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { V2vError } from '../errors.js';
import type { Node } from '../node/node.js';

/** Another load (or conversion) holds the lock past the wait. */
export class LockedError extends V2vError {
  override readonly code = 'LOCKED';
}

interface Owner {
  host: string;
  pid: number;
  time: number;
  token: string;
  what: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface NodeLockOptions {
  /** How long to wait for another owner. */
  waitMs: number;
  /** A lock from another host older than this is stale. Default 6 h. */
  staleMs?: number;
  pollMs?: number;
}

/** A held lock. */
export interface HeldLock {
  readonly dir: string;
  release(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes the lock directory `dir` on `node` for `what` (e.g. `load of vm4-22`).
 * @throws LockedError naming the owner when it is held past `waitMs`
 */
export async function takeNodeLock(
  node: Node,
  dir: string,
  what: string,
  opts: NodeLockOptions,
): Promise<HeldLock> {
  const me: Owner = {
    host: os.hostname(),
    pid: process.pid,
    time: Date.now(),
    token: randomBytes(8).toString('hex'),
    what,
  };
  const deadline = Date.now() + opts.waitMs;
  const staleMs = opts.staleMs ?? 6 * 3600_000;
  let pause = opts.pollMs ?? 100;
  let owner: Owner | undefined;
  // (file operations only: on an SSH node they go over SFTP, with no remote shell to start)
  const parent = path.posix.dirname(dir);
  if (!(await node.stat(parent))) await node.mkdir(parent, { recursive: true });
  for (;;) {
    // The owner record is written whole under a name of its own, then the directory is renamed
    // onto the lock's name without replacing: a lock never exists without its owner record.
    const fresh = `${dir}.new-${me.token}`;
    await node.mkdir(fresh, { mode: 0o700 });
    me.time = Date.now();
    await node.writeFileAtomic(path.posix.join(fresh, 'owner.json'), JSON.stringify(me));
    try {
      await node.rename(fresh, dir, { noReplace: true });
      return {
        dir,
        release: async () => {
          const cur = await readOwner(node, dir);
          if (cur?.token !== me.token) return;
          const aside = `${dir}.released-${me.token}`;
          await node.rename(dir, aside, { noReplace: true }).catch(() => {});
          await removeLockDir(node, aside);
        },
      };
    } catch {
      await removeLockDir(node, fresh);
    }
    owner = await readOwner(node, dir);
    const stale = owner
      ? owner.host === os.hostname()
        ? !alive(owner.pid)
        : Date.now() - owner.time > staleMs
      : false;
    if (stale && owner) {
      const aside = `${dir}.stale-${owner.token}`;
      if (
        await node.rename(dir, aside, { noReplace: true }).then(
          () => true,
          () => false,
        )
      ) {
        await node.remove(aside, { recursive: true });
      }
      continue;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const by = owner
        ? `${owner.what} (pid ${owner.pid} on ${owner.host}, since ${new Date(owner.time).toISOString()})`
        : 'an owner that left no record';
      throw new LockedError(`${what}: ${dir} on ${node.name} is held by ${by}`, {
        hint: `wait for it to finish and try again; if that process is gone, remove ${dir}`,
      });
    }
    await sleep(Math.min(left, pause));
    pause = Math.min(pause * 2, 2000);
  }
}

/** Removes a lock directory: its owner record, then the empty directory (no `rm -rf`). */
async function removeLockDir(node: Node, dir: string): Promise<void> {
  await node.remove(path.posix.join(dir, 'owner.json'));
  await node.remove(dir).catch(() => node.remove(dir, { recursive: true }));
}

async function readOwner(node: Node, dir: string): Promise<Owner | undefined> {
  try {
    const o = JSON.parse(
      (await node.readFile(path.posix.join(dir, 'owner.json'))).toString('utf8'),
    ) as Owner;
    return typeof o.token === 'string' && typeof o.pid === 'number' ? o : undefined;
  } catch {
    return undefined;
  }
}
