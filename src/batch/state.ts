/**
 * The batch state file: what each item has reached, written (atomically, one write at a time)
 * at every stage, so that a batch killed in any way and run again skips the items that are
 * done, redoes the half-done ones (their import cleans up after the dead one first: see
 * src/import/import-record.ts) and the failed ones, and reports them all. One batch process
 * owns the file at a time.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ImportStage } from '../import/importer.js';
import { pidAlive } from '../node/pid-alive.js';
import { ManifestError } from './manifest.js';

export const ITEM_STATUSES = ['pending', 'running', 'done', 'failed'] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** One stage of one attempt, in epoch milliseconds. */
export interface StageSpan {
  stage: ImportStage;
  start: number;
  end?: number | undefined;
  /** False for the stage that failed. */
  ok?: boolean | undefined;
}

export interface ItemState {
  key: string;
  status: ItemStatus;
  attempts: number;
  /** Batch run (1, 2, ...) the item last ran in. */
  run?: number | undefined;
  started?: number | undefined;
  ended?: number | undefined;
  stages: StageSpan[];
  /** Set when the item ran into a half-done earlier attempt (a killed batch). */
  resumedAfterCrash?: boolean | undefined;
  result?:
    | {
        name: string;
        node: string;
        uri: string;
        state: string;
        xmlPath: string;
        disks: { path: string; bytes: number }[];
        booted?: boolean | undefined;
        bootSeconds?: number | undefined;
      }
    | undefined;
  error?: { message: string; hint?: string | undefined; code: string; stage?: string } | undefined;
  /** The item's log file (the embedded batch). */
  log?: string | undefined;
  /** Queue mode: the worker that ran (or runs) the item's latest stage. */
  worker?: string | undefined;
}

export interface BatchStateData {
  version: 1;
  manifest: string;
  owner: { host: string; pid: number; since: string };
  runs: number;
  items: Record<string, ItemState>;
}

export class BatchState {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    readonly data: BatchStateData,
  ) {}

  /** Opens (or creates) the state file and takes it; refused while another batch holds it. */
  static async open(file: string, manifest: string): Promise<BatchState> {
    let data: BatchStateData | undefined;
    try {
      data = JSON.parse(await fs.readFile(file, 'utf8')) as BatchStateData;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ManifestError(
          `--state ${file}: not a batch state file: ${(e as Error).message}`,
          {
            hint: 'give another --state file, or remove this one to start the batch afresh',
          },
        );
      }
    }
    if (data && data.version !== 1) {
      throw new ManifestError(
        `--state ${file}: unknown state file version ${String(data.version)}`,
      );
    }
    const me = { host: os.hostname(), pid: process.pid, since: new Date().toISOString() };
    if (data && data.owner.pid !== me.pid) {
      const theirs = data.owner;
      if (theirs.host !== me.host || (await pidAlive(theirs.pid))) {
        throw new ManifestError(
          `--state ${file}: another batch uses it (pid ${theirs.pid} on ${theirs.host}, since ${theirs.since})`,
          { hint: 'wait for it to finish, or give another --state file' },
        );
      }
    }
    const state = new BatchState(
      file,
      data
        ? { ...data, owner: me, runs: data.runs + 1 }
        : { version: 1, manifest, owner: me, runs: 1, items: {} },
    );
    await fs.mkdir(path.dirname(file), { recursive: true });
    await state.save();
    return state;
  }

  get run(): number {
    return this.data.runs;
  }

  item(key: string): ItemState | undefined {
    return this.data.items[key];
  }

  async set(item: ItemState): Promise<void> {
    this.data.items[item.key] = item;
    await this.save();
  }

  /** Writes the file atomically; writes are serialised. */
  save(): Promise<void> {
    const text = `${JSON.stringify(this.data, null, 2)}\n`;
    this.writing = this.writing.then(async () => {
      const tmp = `${this.file}.tmp-${process.pid}`;
      await fs.writeFile(tmp, text, { mode: 0o644 });
      await fs.rename(tmp, this.file);
    });
    return this.writing;
  }
}
