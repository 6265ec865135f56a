/**
 * The import record: a small file in the pool on the target node (`POOL/.NAME.v2v-load-import`)
 * saying which process imports NAME there and what it has made so far. Two imports of the same
 * name into the same pool exclude each other (the file is created without replacing), and the
 * next import after a crash (kill -9, power loss) removes what the dead one made — the domain
 * (by UUID), the disks, the XML, the console log, temporary files, the local staging directory —
 * before it starts again. Everything is recorded before it is made, never after.
 */
import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { isTempSiblingOf } from '../convert/run-record.js';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import { pidAlive } from '../node/pid-alive.js';
import { tempSibling } from '../node/temp-name.js';
import { ImportBusyError, ImportError } from './errors.js';

export interface ImportRecordData {
  host: string;
  pid: number;
  started: string;
  /** Files on the node this import creates (removed when it died before it finished). */
  outputs: string[];
  /** libvirt URI on the node. */
  uri: string;
  /** UUID of the domain this import defines, recorded just before the define. */
  domainUuid?: string | undefined;
  /** The converting machine's staging directory (when the node is remote). */
  staging?: string | undefined;
  /** What the import was asked to do (sources, options, node): a rerun resumes only the same. */
  fingerprint?: string | undefined;
  /** Set once the conversion finished: a rerun of the same import starts after it. */
  converted?: ConvertedRecord | undefined;
  /**
   * A staged import (one stage per call, see Importer's `staged`): the queue item that owns the
   * record across its stage runs (`queue:BATCH/ITEM`). The next stage of the same item, or a
   * retry of a stage on any worker, takes the record over once the earlier run is no longer
   * `active`.
   */
  owner?: string | undefined;
  /** Staged imports: the disks placed in the pool (and the XML written), once all are. */
  placed?: PlacedRecord | undefined;
  /** Staged imports: the domain `domainUuid` is defined. */
  defined?: boolean | undefined;
  /** Staged imports: the domain was started. */
  domainStarted?: boolean | undefined;
  /**
   * Staged imports: the stage run at work on the record, while it is (cleared when the run ends,
   * however it ends). It beats every few seconds; the next run takes the record over only once
   * this one is gone: its process dead (this machine), its beat stale (another machine), or it
   * ended. A worker that lost its job on the queue (its lock ran out while it still worked)
   * thus never runs a stage beside the one the job was handed to.
   */
  active?: ActiveRun | undefined;
}

/** A stage run at work on a record. */
export interface ActiveRun {
  host: string;
  pid: number;
  /** Tells the runs of one process apart. */
  run: string;
  /** ISO time of the last beat. */
  beat: string;
}

/** How often an active run beats, and after how long without a beat it counts as gone. */
export const BEAT_MS = 5_000;
export const LEASE_MS = 30_000;

/** The runs of this process at work on a record. */
const liveRuns = new Set<string>();

/** True while the run `a` may still be at work. */
async function stillAtWork(a: ActiveRun): Promise<boolean> {
  if (a.host === os.hostname()) {
    return a.pid === process.pid ? liveRuns.has(a.run) : pidAlive(a.pid);
  }
  return Date.now() - Date.parse(a.beat) < LEASE_MS;
}

/** The place stage's outcome. */
export interface PlacedRecord {
  disks: {
    path: string;
    format: string;
    dev: string;
    bytes: number;
    sha256?: string | undefined;
  }[];
}

/** The conversion's outcome, as far as the later stages need it. */
export interface ConvertedRecord {
  disks: { path: string; format: string; dev: string }[];
  xml: string;
  source: { kind: string; path: string; hypervisor: string };
  guest: {
    distro: string;
    version: string;
    productName: string;
    kernels: string[];
    initramfsTool: string;
    bootloader: string;
  };
  stages: Record<string, number>;
}

export class ImportRecord {
  /** Writes of the record, one after another (the beat and the stages' updates). */
  private writing: Promise<void> = Promise.resolve();
  private beat: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly node: Node,
    readonly path: string,
    private data: ImportRecordData,
  ) {
    const active = data.active;
    if (active) {
      liveRuns.add(active.run);
      this.beat = setInterval(() => {
        this.update({ active: { ...active, beat: new Date().toISOString() } }).catch(() => {});
      }, BEAT_MS);
      this.beat.unref();
    }
  }

  get value(): Readonly<ImportRecordData> {
    return this.data;
  }

  static fileFor(pool: string, name: string): string {
    return path.posix.join(pool, `.${name}.v2v-load-import`);
  }

  /**
   * Takes the record for `name` in `pool`. A record left by a dead process of this machine is
   * handed to `cleanStale` (which removes what it lists), then taken over; a live one, or one of
   * another machine, is refused.
   */
  static async acquire(
    node: Node,
    pool: string,
    name: string,
    uri: string,
    log: Logger,
    cleanStale: (stale: ImportRecordData) => Promise<void>,
    owner?: string,
  ): Promise<ImportRecord> {
    const file = ImportRecord.fileFor(pool, name);
    const mine: ImportRecordData = {
      host: os.hostname(),
      pid: process.pid,
      started: new Date().toISOString(),
      outputs: [],
      uri,
      ...(owner
        ? {
            owner,
            active: {
              host: os.hostname(),
              pid: process.pid,
              run: randomUUID(),
              beat: new Date().toISOString(),
            },
          }
        : {}),
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      const tmp = tempSibling(file);
      await node.writeFileAtomic(tmp, `${JSON.stringify(mine, null, 2)}\n`, { mode: 0o644 });
      try {
        await node.rename(tmp, file, { noReplace: true });
        return new ImportRecord(node, file, mine);
      } catch (e) {
        await node.remove(tmp).catch(() => {});
        if (!(await node.stat(file))) throw e;
      }
      const other = await ImportRecord.read(node, file);
      const holder = other
        ? `pid ${other.pid} on ${other.host}, since ${other.started}${other.owner ? `, for ${other.owner}` : ''}`
        : 'unknown owner';
      if (owner && other?.owner === owner) {
        if (other.active && (await stillAtWork(other.active))) {
          const a = other.active;
          throw new ImportBusyError(
            `an earlier run of ${owner} is still at work on ${name} in ${pool} on ${node.name} (pid ${a.pid} on ${a.host}, last seen ${a.beat})`,
            {
              hint: `it stops once it notices it lost the job, or counts as gone ${LEASE_MS / 1000} s after its last beat`,
            },
          );
        }
        log.debug(`${file}: taken over from an earlier stage run of ${owner} (${holder})`);
        await cleanStale(other);
        await ImportRecord.removeStale(node, file);
        continue;
      }
      if (other && other.host === mine.host && !(await pidAlive(other.pid))) {
        log.warn(`${file}: the import that owned it (${holder}) is gone; cleaning up after it`);
        await cleanStale(other);
        await ImportRecord.removeStale(node, file);
        continue;
      }
      throw new ImportBusyError(
        `another import of ${name} into ${pool} on ${node.name} is running (${holder})`,
        {
          hint: `wait for it; if no import runs any more (e.g. its machine crashed), remove ${file}`,
        },
      );
    }
    throw new ImportError(`${file}: could not take the import record`);
  }

  /**
   * Removes the record of `owner`'s item, which is done (see Importer.finish); a record of
   * another owner, or one a run is still at work on, stays.
   */
  static async finish(
    node: Node,
    pool: string,
    name: string,
    owner: string,
    log: Logger,
  ): Promise<void> {
    const file = ImportRecord.fileFor(pool, name);
    const data = await ImportRecord.read(node, file);
    if (!data || data.owner !== owner) return;
    if (data.active && (await stillAtWork(data.active))) {
      log.warn(`${file}: a run is still at work on it; left for that run`);
      return;
    }
    await ImportRecord.removeStale(node, file);
  }

  /** Removes a dead import's record and the temporary copies of it a kill left mid-write. */
  private static async removeStale(node: Node, file: string): Promise<void> {
    const dir = path.posix.dirname(file);
    for (const e of await node.list(dir).catch(() => [])) {
      if (isTempSiblingOf(e.name, file)) await node.remove(path.posix.join(dir, e.name));
    }
    await node.remove(file);
  }

  private static async read(node: Node, file: string): Promise<ImportRecordData | undefined> {
    try {
      return JSON.parse((await node.readFile(file)).toString()) as ImportRecordData;
    } catch {
      return undefined;
    }
  }

  /** Records more of what the import makes (before it makes it). */
  async update(patch: Partial<ImportRecordData>): Promise<void> {
    if (this.closed) return;
    this.data = { ...this.data, ...patch };
    // One write at a time, each of the data as it is then: the last write holds every patch.
    const write = this.writing.then(() =>
      this.closed
        ? undefined
        : this.node.writeFileAtomic(this.path, `${JSON.stringify(this.data, null, 2)}\n`, {
            mode: 0o644,
          }),
    );
    this.writing = write.catch(() => {});
    await write;
  }

  /** A staged run ends (however): the record stays for the next stage run, which may take it. */
  async pause(): Promise<void> {
    if (this.closed) return;
    this.stopBeat();
    const { active: _, ...rest } = this.data;
    this.data = rest;
    await this.update({});
    this.closed = true;
  }

  async release(): Promise<void> {
    this.stopBeat();
    this.closed = true;
    await this.writing;
    await this.node.remove(this.path);
  }

  private stopBeat(): void {
    if (this.beat) clearInterval(this.beat);
    this.beat = undefined;
    if (this.data.active) liveRuns.delete(this.data.active.run);
  }
}
