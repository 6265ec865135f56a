/**
 * The import record: a small file in the pool on the target node (`POOL/.NAME.v2v-load-import`)
 * saying which process imports NAME there and what it has made so far. Two imports of the same
 * name into the same pool exclude each other (the file is created without replacing), and the
 * next import after a crash (kill -9, power loss) removes what the dead one made — the domain
 * (by UUID), the disks, the XML, the console log, temporary files, the local staging directory —
 * before it starts again. Everything is recorded before it is made, never after.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { isTempSiblingOf, pidAlive } from '../convert/run-record.js';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
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
   * retry of a stage on any worker, takes the record over: the queue hands a job to one worker
   * at a time, so an earlier holder is gone or has lost the job.
   */
  owner?: string | undefined;
  /** Staged imports: the disks placed in the pool (and the XML written), once all are. */
  placed?: PlacedRecord | undefined;
  /** Staged imports: the domain `domainUuid` is defined. */
  defined?: boolean | undefined;
  /** Staged imports: the domain was started. */
  domainStarted?: boolean | undefined;
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
  private constructor(
    private readonly node: Node,
    readonly path: string,
    private data: ImportRecordData,
  ) {}

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
      ...(owner ? { owner } : {}),
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
    this.data = { ...this.data, ...patch };
    await this.node.writeFileAtomic(this.path, `${JSON.stringify(this.data, null, 2)}\n`, {
      mode: 0o644,
    });
  }

  async release(): Promise<void> {
    await this.node.remove(this.path);
  }
}
