/**
 * The master image cache of a node's datastore. When many loads ask for the same missing
 * master at once, it is copied from the repository once:
 * - within this process, concurrent requests share one promise;
 * - across processes (and over SSH), a lock directory next to the master holds `owner.json`
 *   {host, pid, time, token}. It is made whole under a name of its own, then renamed onto the
 *   lock's name without replacing (atomic on the node): a lock never exists without its owner,
 *   and an attempt whose answer was lost is recognised by its token at the next look.
 * - Each lock command is bounded (`attemptMs`): a slow node costs an attempt, not the wait;
 *   attempts back off up to `maxPollMs`, and only the lock's own deadline (`waitMs`) ends the
 *   wait, with the lock and its owner record in the message.
 * - `owner.json` is written once, before the lock exists. While it copies, the owner beats
 *   into `beat-<token>` next to it (the time of its last beat), and only while `owner.json`
 *   still holds its token: once the lock was taken over it stops, abandons its copy and waits
 *   like any other. A beat that was under way during a takeover lands, at worst, in a file the
 *   new owner never reads. Releasing checks the token too, and moves the lock aside before
 *   removing it, so it never removes another owner's lock.
 * - A lock whose owner process is dead (same host) or whose `time` is older than `staleMs`
 *   (another host) is taken over: renamed aside (only one taker wins), then removed.
 * The copy goes to a temporary name, is checked (format, virtual size, `qemu-img check`) and
 * only then renamed onto the master's name, never over a file. Free space is checked against
 * `qemu-img measure`.
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { CommandError } from '../errors.js';
import type { Node } from '../node/node.js';
import { StorageError, TargetAppearedError } from './errors.js';
import type { ImageFormat, ImageRef } from './image-format.js';
import { CopyMode } from './modes/copy.js';
import type { ProgressEvent, QemuImg } from './qemu-img.js';
import { findImageIn, findInRepository, type ImageFiles, masterPath } from './repository.js';

/** The owner of a lock, as written in `owner.json`. */
export interface LockOwner {
  host: string;
  pid: number;
  /** Last heartbeat (or creation), ms since the epoch. */
  time: number;
  token: string;
}

/** Options of a {@link MasterCache}. */
export interface MasterCacheOptions {
  /** A lock not refreshed for this long (owner on another host) is stale. Default 10 min. */
  staleMs?: number;
  /** The first pause between two looks at a held lock. Default 200 ms; doubles each time. */
  pollMs?: number;
  /** The longest pause between two looks. Default 5 s. */
  maxPollMs?: number;
  /** The lock's deadline: how long to wait for another owner before giving up. Default 6 h. */
  waitMs?: number;
  /** The bound of each lock command on the node; a slower one counts as a failed attempt. Default 10 s. */
  attemptMs?: number;
  /** How often the owner refreshes its record. Default `staleMs / 3`. */
  heartbeatMs?: number;
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
  /**
   * The image whose repository directory (`<repo>/<name>/`) is searched first: an extra disk
   * of a master (`<image>-disk2`) lives in its image's directory.
   */
  inImageDirectory?: string | undefined;
  /**
   * Runs on the checked copy, under the lock, before it takes the master's name (e.g. the
   * Windows registry changes): no load ever sees the master unprepared. A throw discards the
   * copy.
   */
  prepare?: ((copy: ImageRef, found: ImageFiles) => Promise<void>) | undefined;
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

/** One lock command took longer than its bound. */
class AttemptTimeout extends Error {}

/**
 * `fn()`, or an AttemptTimeout after `ms`. The command itself may still finish later: every
 * step of the lock is made so that a late one does no harm (see the module comment).
 */
async function bounded<T>(
  ms: number,
  fn: () => Promise<T>,
  abandoned?: Promise<unknown>[],
): Promise<T> {
  const p = fn();
  p.catch(() => {});
  abandoned?.push(p.catch(() => {}));
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AttemptTimeout(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function isTimeout(e: unknown): boolean {
  return e instanceof AttemptTimeout || (e instanceof CommandError && e.timedOut);
}

/**
 * The owner record in `lockDir`; undefined when there is none (no lock, or a lock made by an
 * older version that has not named itself yet).
 * @throws the node's error when the record exists but cannot be read
 */
async function readOwner(node: Node, lockDir: string): Promise<LockOwner | undefined> {
  const file = path.join(lockDir, 'owner.json');
  let text: string;
  try {
    text = (await node.readFile(file)).toString('utf8');
  } catch (e) {
    // no record (or no lock): ENOENT; the record may have appeared since, so ask only when
    // the error says something else
    if (/ENOENT/.test((e as Error).message) || (await node.stat(file)) === undefined) {
      return undefined;
    }
    throw e;
  }
  let o: LockOwner;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined; // half-written by an older version: not stale by itself
  }
  if (typeof o.host !== 'string' || typeof o.pid !== 'number' || typeof o.time !== 'number') {
    return undefined;
  }
  if (typeof o.token === 'string' && /^[\w-]{1,64}$/.test(o.token)) {
    const beat = await node
      .readFile(path.join(lockDir, beatName(o.token)))
      .then((b) => Number(b.toString('utf8')))
      .catch(() => Number.NaN);
    if (Number.isFinite(beat) && beat > o.time) o.time = beat;
  }
  return o;
}

/** The file an owner beats into. */
function beatName(token: string): string {
  return `beat-${token}`;
}

function describeOwner(o: LockOwner | undefined): string {
  if (!o) return 'an unknown owner (no owner record)';
  return (
    `pid ${o.pid} on ${o.host} (owner record: last heartbeat ` +
    `${new Date(o.time).toISOString()}, token ${o.token})`
  );
}

/** What a bounded lock command gives when it got no answer in time. */
const TIMED_OUT = Symbol('timed out');

/** The longest bound a lock command grows to. */
const MAX_ATTEMPT_MS = 120_000;

/** The heartbeat of a held lock. */
interface Heartbeat {
  /** Stops it, and waits for a beat under way. */
  stop(): Promise<void>;
  /** Aborted when the lock was found taken over. */
  readonly lost: AbortSignal;
}

/** Copies masters from the repository into the datastore, once per image. */
export class MasterCache {
  private readonly inflight = new Map<string, Promise<ImageRef>>();
  private readonly staleMs: number;
  private readonly pollMs: number;
  private readonly maxPollMs: number;
  private readonly waitMs: number;
  private readonly attemptMs: number;
  private readonly heartbeatMs: number;

  constructor(
    private readonly qemu: QemuImg,
    private readonly opts: MasterCacheOptions = {},
  ) {
    this.staleMs = opts.staleMs ?? 10 * 60_000;
    this.pollMs = opts.pollMs ?? 200;
    this.maxPollMs = Math.max(this.pollMs, opts.maxPollMs ?? 5_000);
    this.waitMs = opts.waitMs ?? 6 * 3600_000;
    this.attemptMs = opts.attemptMs ?? 10_000;
    this.heartbeatMs = opts.heartbeatMs ?? Math.max(1000, this.staleMs / 3);
  }

  /** The lock directory of a master. */
  static lockDirOf(master: string): string {
    return path.join(path.dirname(master), `.${path.basename(master)}.lock`);
  }

  /**
   * The master of `req.image` in the datastore, copied from the repository when missing.
   * @throws StorageError when the repository lacks the image, the copy fails its checks, the
   *   space is short, or another owner holds the lock past the deadline (`waitMs`)
   */
  ensure(req: MasterRequest): Promise<ImageRef> {
    const master = masterPath(req.datastore, req.image, req.format ?? 'qcow2');
    let p = this.inflight.get(master);
    if (!p) {
      p = this.ensureLocked(req, master, Date.now() + this.waitMs).finally(() =>
        this.inflight.delete(master),
      );
      this.inflight.set(master, p);
    }
    return p;
  }

  private async ensureLocked(
    req: MasterRequest,
    master: string,
    deadline: number,
  ): Promise<ImageRef> {
    const ref: ImageRef = { path: master, format: req.format ?? 'qcow2' };
    const lockDir = MasterCache.lockDirOf(master);
    for (;;) {
      if (await this.node.stat(master)) return ref;
      const owner = await this.acquire(lockDir, master, deadline);
      if (!owner) return ref; // another owner made it meanwhile
      const beat = this.heartbeat(lockDir, owner);
      try {
        if (await this.node.stat(master)) return ref;
        await this.copy(req, ref, beat.lost);
        return ref;
      } catch (e) {
        // Taken over while copying (our heartbeat was late): the new owner copies; wait for
        // it. Or another owner's checked copy took the name first: that is the master.
        if (!beat.lost.aborted && !(e instanceof TargetAppearedError)) throw e;
      } finally {
        await beat.stop();
        await this.release(lockDir, owner);
      }
    }
  }

  private get node(): Node {
    return this.qemu.node;
  }

  /**
   * Takes the lock; undefined when the master appeared while waiting.
   * @throws StorageError naming the lock and its owner record at the deadline
   */
  private async acquire(
    lockDir: string,
    master: string,
    deadline: number,
  ): Promise<LockOwner | undefined> {
    const owner: LockOwner = {
      host: os.hostname(),
      pid: process.pid,
      time: Date.now(),
      token: randomBytes(8).toString('hex'),
    };
    // The lock is made whole under a name of its own, then renamed onto the lock's name.
    const fresh = `${lockDir}.new-${owner.token}`;
    let pause = this.pollMs;
    let timeouts = 0;
    let failures = 0;
    let current: LockOwner | undefined;
    // The bound of one lock command: doubled after each command that got no answer in time
    // (a node that is slow throughout still gets through), never past the deadline.
    let bound = this.attemptMs;
    // every lock command's promise: a late one must land before we clean up after giving up
    const pending: Promise<unknown>[] = [];
    const attempt = async <T>(fn: () => Promise<T>): Promise<T | typeof TIMED_OUT> => {
      try {
        return await bounded(Math.max(1, Math.min(bound, deadline - Date.now())), fn, pending);
      } catch (e) {
        if (!isTimeout(e)) throw e;
        timeouts++;
        bound = Math.min(bound * 2, Math.max(this.attemptMs, MAX_ATTEMPT_MS));
        return TIMED_OUT;
      }
    };
    const giveUp = (): never => {
      const slow =
        timeouts > 0
          ? `; ${timeouts} lock commands got no answer in time (bound ${this.attemptMs} ms, ` +
            'doubled after each)'
          : '';
      throw new StorageError(
        master,
        `waited ${this.waitMs} ms for the lock ${lockDir} held by ${describeOwner(current)}${slow}`,
        { hint: `if that process is gone, remove the lock directory ${lockDir}` },
      );
    };
    let won = false;
    try {
      let made = false;
      for (;;) {
        if (Date.now() > deadline) giveUp();
        if (!made) {
          const r = await attempt(async () => {
            await this.node.mkdir(fresh).catch(async (e: unknown) => {
              // a late answer of an earlier attempt made it already
              if ((await this.node.stat(fresh))?.type !== 'directory') throw e;
            });
            owner.time = Date.now();
            await this.node.writeFileAtomic(path.join(fresh, 'owner.json'), JSON.stringify(owner));
          }).catch((e: unknown) => {
            throw new StorageError(lockDir, `cannot create the lock: ${(e as Error).message}`, {
              cause: e,
              hint: `check that ${path.dirname(lockDir)} exists and is writable`,
            });
          });
          made = r !== TIMED_OUT;
        }
        let refused = false;
        if (made) {
          // Fails when a lock exists (or when the answer does not come in time).
          const r = await attempt(() =>
            this.node.rename(fresh, lockDir, { noReplace: true }).then(
              () => true,
              () => false,
            ),
          );
          if (r === true) {
            won = true;
            return owner;
          }
          refused = r === false;
        }
        const look = await attempt(() => readOwner(this.node, lockDir));
        if (look !== TIMED_OUT) {
          if (look?.token === owner.token) {
            won = true; // an attempt whose answer was lost did take it
            return owner;
          }
          current = look;
        }
        const m = await attempt(() => this.node.stat(master));
        if (m !== TIMED_OUT && m !== undefined) return undefined;
        // (with an owner record, staleness is the record's; without one, the lock's age)
        const lockSt =
          look === TIMED_OUT
            ? TIMED_OUT
            : look === undefined
              ? await attempt(() => this.node.stat(lockDir))
              : { mtime: new Date() };
        if (lockSt === undefined && refused) {
          // No lock, yet our rename failed: the lock was released meanwhile (try again at
          // once), or the directory refuses it (then it keeps failing).
          if (++failures >= 5) {
            throw new StorageError(lockDir, `cannot create the lock: renaming ${fresh} fails`, {
              hint: `check that ${path.dirname(lockDir)} exists and is writable`,
            });
          }
          continue;
        }
        failures = 0;
        if (look !== TIMED_OUT && lockSt !== TIMED_OUT && lockSt !== undefined) {
          const stale =
            look === undefined
              ? this.ownerless(lockSt.mtime)
              : isStale(look, Date.now(), this.staleMs);
          if (stale) {
            await this.takeOver(lockDir, look?.token).catch((e: unknown) => {
              if (!isTimeout(e)) throw e;
            });
            continue;
          }
        }
        const left = deadline - Date.now();
        if (left <= 0) giveUp();
        // back off, with jitter so that waiters do not knock in step
        await sleep(Math.min(left, pause / 2 + Math.random() * (pause / 2)));
        pause = Math.min(pause * 2, this.maxPollMs);
      }
    } finally {
      if (!won) {
        await Promise.all(pending);
        await this.node.remove(fresh, { recursive: true }).catch(() => {});
        // A rename that answered after we gave up: that lock is ours, give it back.
        await this.release(lockDir, owner).catch(() => {});
      }
    }
  }

  /** A lock directory without an owner record for `staleMs`: its maker died before naming it. */
  private ownerless(mtime: Date): boolean {
    return Date.now() - mtime.getTime() > this.staleMs;
  }

  /**
   * Beats every `heartbeatMs` (into `beat-<token>`; `owner.json` is never rewritten), each time
   * only after reading that the lock still holds our token; stops for good when it does not.
   */
  private heartbeat(lockDir: string, owner: LockOwner): Heartbeat {
    const lost = new AbortController();
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const beat = async (): Promise<void> => {
      try {
        // a beat may be slow (it only has to come before staleMs); a hung one is given up
        const current = await bounded(this.staleMs, () => readOwner(this.node, lockDir));
        if (stopped) return;
        if (current?.token !== owner.token) {
          stopped = true;
          lost.abort(
            new StorageError(lockDir, `the lock was taken over by ${describeOwner(current)}`),
          );
          return;
        }
        owner.time = Date.now();
        await bounded(this.staleMs, () =>
          this.node.writeFileAtomic(path.join(lockDir, beatName(owner.token)), String(owner.time)),
        );
      } catch {
        // a missed beat: the next one tries again
      }
    };
    const schedule = (): void => {
      timer = setTimeout(() => {
        running = beat().finally(() => {
          if (!stopped) schedule();
        });
      }, this.heartbeatMs);
    };
    schedule();
    return {
      lost: lost.signal,
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
      },
    };
  }

  /**
   * Moves a stale lock aside (one taker wins the rename) and removes it, with the temporary
   * files its owner left next to the master.
   */
  private async takeOver(lockDir: string, staleToken: string | undefined): Promise<void> {
    const aside = `${lockDir}.stale-${randomBytes(6).toString('hex')}`;
    try {
      await bounded(this.attemptMs, () => this.node.rename(lockDir, aside, { noReplace: true }));
    } catch (e) {
      if (isTimeout(e)) throw e;
      return; // someone else took it over
    }
    const moved = await readOwner(this.node, aside).catch(() => undefined);
    if (moved?.token !== staleToken) {
      // A fresh lock was made between our look and our rename: give it back.
      await this.node.rename(aside, lockDir, { noReplace: true }).catch(() => {});
      await this.node.remove(aside, { recursive: true }).catch(() => {});
      return;
    }
    await this.node.remove(aside, { recursive: true });
    const dir = path.dirname(lockDir);
    const base = path.basename(lockDir);
    const prefix = `${base.replace(/\.lock$/, '')}.tmp-`;
    for (const e of await this.node.list(dir)) {
      if (e.type === 'file' && e.name.startsWith(prefix)) {
        await this.node.remove(path.join(dir, e.name));
      } else if (e.type === 'directory' && e.name.startsWith(`${base}.stale-`)) {
        // an earlier taker's rename that answered too late
        await this.node.remove(path.join(dir, e.name), { recursive: true });
      }
    }
  }

  /**
   * Removes the lock if it is still ours: checked, then moved aside (atomic) and checked
   * again, so a lock taken over meanwhile is put back, never removed.
   */
  private async release(lockDir: string, owner: LockOwner): Promise<void> {
    const current = await readOwner(this.node, lockDir).catch(() => undefined);
    if (current?.token !== owner.token) return; // not ours (any more): never touched
    const aside = `${lockDir}.released-${owner.token}`;
    try {
      await bounded(this.staleMs, () => this.node.rename(lockDir, aside, { noReplace: true }));
    } catch {
      return;
    }
    const moved = await readOwner(this.node, aside).catch(() => undefined);
    if (moved?.token !== owner.token) {
      await this.node.rename(aside, lockDir, { noReplace: true }).catch(() => {});
      await this.node.remove(aside, { recursive: true }).catch(() => {});
      return;
    }
    await this.node.remove(aside, { recursive: true }).catch(() => {});
  }

  private async copy(req: MasterRequest, master: ImageRef, lost: AbortSignal): Promise<void> {
    const found =
      (req.inImageDirectory
        ? await findImageIn(
            this.node,
            path.join(req.repository, req.inImageDirectory),
            req.image,
            'repository',
          )
        : undefined) ?? (await findInRepository(this.node, req.repository, req.image));
    if (!found) {
      throw new StorageError(
        path.join(req.repository, req.image),
        `image ${req.image} is neither in the datastore ${req.datastore} nor in the repository`,
      );
    }
    const q = this.qemu.allowing(path.dirname(found.entry.path));
    const src = await q.info(found.entry);
    this.opts.onCopy?.(master.path);
    const disk = await new CopyMode({ signal: lost }).prepare(q, {
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
      if (req.prepare) {
        if (lost.aborted) throw lost.reason;
        await req.prepare(disk.work, found);
      }
      await disk.finish();
    } catch (e) {
      await disk.abort();
      throw e;
    }
  }
}
