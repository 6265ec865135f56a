/**
 * The master image cache of a node's datastore. When many loads ask for the same missing
 * master at once, it is copied from the repository once:
 * - within this process, concurrent requests share one promise;
 * - across processes (and over SSH), a lock directory next to the master (`mkdir` is atomic on
 *   the node) holds `owner.json` {host, pid, time, token}; the owner refreshes `time` while it
 *   copies. A lock whose owner process is dead (same host) or whose `time` is older than
 *   `staleMs` (another host) is taken over: renamed aside (only one taker wins), then removed.
 * The copy goes to a temporary name, is checked (format, virtual size, `qemu-img check`) and
 * only then renamed onto the master's name. Free space is checked against `qemu-img measure`.
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Node } from '../node/node.js';
import { StorageError } from './errors.js';
import type { ImageFormat, ImageRef } from './image-format.js';
import { CopyMode } from './modes/copy.js';
import type { ProgressEvent, QemuImg } from './qemu-img.js';
import { findInRepository, masterPath } from './repository.js';

/** The owner of a lock, as written in `owner.json`. */
export interface LockOwner {
  host: string;
  pid: number;
  /** Last heartbeat, ms since the epoch. */
  time: number;
  token: string;
}

/** Options of a {@link MasterCache}. */
export interface MasterCacheOptions {
  /** A lock not refreshed for this long (owner on another host) is stale. Default 10 min. */
  staleMs?: number;
  /** How often a waiter looks again. Default 200 ms. */
  pollMs?: number;
  /** How long to wait for another owner before giving up. Default 6 h. */
  waitMs?: number;
  /** Called once per copy actually made (for tests and logs). */
  onCopy?: (master: string) => void;
  onProgress?: (e: ProgressEvent) => void;
}

/** One master request. */
export interface MasterRequest {
  datastore: string;
  repository: string;
  image: string;
  /** Format of the master in the datastore (default qcow2). */
  format?: ImageFormat;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when the process `pid` of this host is alive. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a lock with this owner is stale. */
export function isStale(owner: LockOwner | undefined, now: number, staleMs: number): boolean {
  if (!owner) return false;
  if (owner.host === os.hostname()) return !processAlive(owner.pid);
  return now - owner.time > staleMs;
}

async function readOwner(node: Node, lockDir: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse((await node.readFile(path.join(lockDir, 'owner.json'))).toString('utf8'));
    if (typeof o.host === 'string' && typeof o.pid === 'number' && typeof o.time === 'number') {
      return o as LockOwner;
    }
  } catch {
    // no owner yet (being created) or unreadable: not stale by itself
  }
  return undefined;
}

/** Copies masters from the repository into the datastore, once per image. */
export class MasterCache {
  private readonly inflight = new Map<string, Promise<ImageRef>>();
  private readonly staleMs: number;
  private readonly pollMs: number;
  private readonly waitMs: number;

  constructor(
    private readonly qemu: QemuImg,
    private readonly opts: MasterCacheOptions = {},
  ) {
    this.staleMs = opts.staleMs ?? 10 * 60_000;
    this.pollMs = opts.pollMs ?? 200;
    this.waitMs = opts.waitMs ?? 6 * 3600_000;
  }

  /** The lock directory of a master. */
  static lockDirOf(master: string): string {
    return path.join(path.dirname(master), `.${path.basename(master)}.lock`);
  }

  /**
   * The master of `req.image` in the datastore, copied from the repository when missing.
   * @throws StorageError when the repository lacks the image, the copy fails its checks, the
   *   space is short, or another owner holds the lock longer than `waitMs`
   */
  ensure(req: MasterRequest): Promise<ImageRef> {
    const master = masterPath(req.datastore, req.image, req.format ?? 'qcow2');
    let p = this.inflight.get(master);
    if (!p) {
      p = this.ensureLocked(req, master).finally(() => this.inflight.delete(master));
      this.inflight.set(master, p);
    }
    return p;
  }

  private async ensureLocked(req: MasterRequest, master: string): Promise<ImageRef> {
    const ref: ImageRef = { path: master, format: req.format ?? 'qcow2' };
    if (await this.node.stat(master)) return ref;
    const lockDir = MasterCache.lockDirOf(master);
    const owner = await this.acquire(lockDir, master);
    if (!owner) return ref; // another owner made it meanwhile
    const beat = setInterval(
      () => {
        owner.time = Date.now();
        void this.node
          .writeFileAtomic(path.join(lockDir, 'owner.json'), JSON.stringify(owner))
          .catch(() => {});
      },
      Math.max(1000, this.staleMs / 3),
    );
    try {
      if (await this.node.stat(master)) return ref;
      await this.copy(req, ref);
      return ref;
    } finally {
      clearInterval(beat);
      await this.release(lockDir, owner);
    }
  }

  private get node(): Node {
    return this.qemu.node;
  }

  /** Takes the lock; undefined when the master appeared while waiting. */
  private async acquire(lockDir: string, master: string): Promise<LockOwner | undefined> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const r = await this.node.run(['mkdir', '--', lockDir], { reject: false, timeoutMs: 30_000 });
      if (r.exitCode === 0) {
        const owner: LockOwner = {
          host: os.hostname(),
          pid: process.pid,
          time: Date.now(),
          token: randomBytes(8).toString('hex'),
        };
        await this.node.writeFileAtomic(path.join(lockDir, 'owner.json'), JSON.stringify(owner));
        return owner;
      }
      if (!/exists/i.test(r.stderr)) {
        throw new StorageError(lockDir, `cannot create lock: ${r.stderr.trim()}`);
      }
      if (await this.node.stat(master)) return undefined;
      const current = await readOwner(this.node, lockDir);
      if (current ? isStale(current, Date.now(), this.staleMs) : await this.ownerless(lockDir)) {
        await this.takeOver(lockDir, current?.token);
        continue;
      }
      if (Date.now() > deadline) {
        throw new StorageError(
          master,
          `waited ${this.waitMs} ms for the lock ${lockDir} held by ` +
            `${current ? `pid ${current.pid} on ${current.host}` : 'an unknown owner'}`,
          { hint: 'if that process is gone, remove the lock directory' },
        );
      }
      await sleep(this.pollMs);
    }
  }

  /** A lock directory without an owner file for `staleMs`: its maker died before writing it. */
  private async ownerless(lockDir: string): Promise<boolean> {
    const st = await this.node.stat(lockDir);
    return st !== undefined && Date.now() - st.mtime.getTime() > this.staleMs;
  }

  /**
   * Moves a stale lock aside (one taker wins the rename) and removes it, with the temporary
   * files its owner left next to the master.
   */
  private async takeOver(lockDir: string, staleToken: string | undefined): Promise<void> {
    const aside = `${lockDir}.stale-${randomBytes(6).toString('hex')}`;
    const r = await this.node.run(['mv', '-T', '--', lockDir, aside], {
      reject: false,
      timeoutMs: 30_000,
    });
    if (r.exitCode !== 0) return; // someone else took it over
    const moved = await readOwner(this.node, aside);
    if (moved?.token !== staleToken) {
      // A fresh lock was made between our look and our rename: give it back.
      await this.node.run(['mv', '-T', '--', aside, lockDir], { reject: false, timeoutMs: 30_000 });
      return;
    }
    await this.node.remove(aside, { recursive: true });
    const dir = path.dirname(lockDir);
    const prefix = `${path.basename(lockDir).replace(/\.lock$/, '')}.tmp-`;
    for (const e of await this.node.list(dir)) {
      if (e.type === 'file' && e.name.startsWith(prefix))
        await this.node.remove(path.join(dir, e.name));
    }
  }

  private async release(lockDir: string, owner: LockOwner): Promise<void> {
    const current = await readOwner(this.node, lockDir);
    if (current && current.token !== owner.token) return; // taken over: not ours any more
    await this.node.remove(lockDir, { recursive: true }).catch(() => {});
  }

  private async copy(req: MasterRequest, master: ImageRef): Promise<void> {
    const found = await findInRepository(this.node, req.repository, req.image);
    if (!found) {
      throw new StorageError(
        path.join(req.repository, req.image),
        `image ${req.image} is neither in the datastore ${req.datastore} nor in the repository`,
      );
    }
    const q = this.qemu.allowing(path.dirname(found.entry.path));
    const src = await q.info(found.entry);
    this.opts.onCopy?.(master.path);
    const disk = await new CopyMode().prepare(q, {
      source: found.entry,
      target: master,
      ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}),
    });
    try {
      const copy = await q.info(disk.work);
      if (copy.format !== master.format || copy.virtualBytes !== src.virtualBytes) {
        throw new StorageError(
          master.path,
          `the copy of ${found.entry.path} is wrong: ${copy.format}, ${copy.virtualBytes} bytes ` +
            `(expected ${master.format}, ${src.virtualBytes} bytes)`,
        );
      }
      const check = await q.check(disk.work);
      if (!check.ok) {
        throw new StorageError(
          master.path,
          `the copy fails qemu-img check (${check.corruptions} corruptions)`,
        );
      }
      await disk.finish();
    } catch (e) {
      await disk.abort();
      throw e;
    }
  }
}
