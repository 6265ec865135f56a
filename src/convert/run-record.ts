/**
 * The run record: a small file next to a conversion's outputs saying which process owns it and
 * what it may leave behind. It makes two conversions of the same guest into the same
 * directory exclude each other (created without replacing), and lets a rerun after a crash
 * (kill -9, power loss) clean up what the dead run left: temporary overlays, partial outputs,
 * a throwaway verify-boot domain and its network.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import { pidAlive } from '../node/pid-alive.js';
import { tempSibling } from '../node/temp-name.js';
import { ConversionError } from './errors.js';

export interface RunRecordData {
  host: string;
  pid: number;
  started: string;
  /** Final outputs this run creates (removed when the run died before it finished). */
  outputs: string[];
  /** Directories holding the run's temporary siblings (`.NAME.tmp-*`) of the outputs. */
  tempDirs: string[];
  /** Throwaway libvirt objects of verify-boot, while they exist. */
  libvirt?: { uri: string; domain?: string | undefined; network?: string | undefined } | undefined;
  /** A private directory of the run (verify-boot overlays), while it exists. */
  scratch?: string | undefined;
}

/** Names of the temporary siblings of `file` (see tempSibling). */
export function isTempSiblingOf(name: string, file: string): boolean {
  return name.startsWith(`.${path.basename(file)}.tmp-`);
}

export class RunRecord {
  private constructor(
    private readonly node: Node,
    readonly path: string,
    private data: RunRecordData,
  ) {}

  /**
   * Takes the record for `name` in `dir`. A record of a dead process of this host is cleaned up
   * after (what it lists is removed) and taken over; a live one is refused.
   * @throws ConversionError when another conversion owns it
   */
  static async acquire(
    node: Node,
    dir: string,
    name: string,
    data: Omit<RunRecordData, 'host' | 'pid' | 'started'>,
    log: Logger,
    cleanStale: (stale: RunRecordData) => Promise<void>,
  ): Promise<RunRecord> {
    const file = path.posix.join(dir, `.${name}.v2v-load-run`);
    const mine: RunRecordData = {
      host: os.hostname(),
      pid: process.pid,
      started: new Date().toISOString(),
      ...data,
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      const tmp = tempSibling(file);
      await node.writeFileAtomic(tmp, `${JSON.stringify(mine, null, 2)}\n`, { mode: 0o644 });
      try {
        await node.rename(tmp, file, { noReplace: true });
        return new RunRecord(node, file, mine);
      } catch (e) {
        await node.remove(tmp).catch(() => {});
        if (!(await node.stat(file))) throw e;
      }
      const other = await RunRecord.read(node, file);
      const owner = other
        ? `pid ${other.pid} on ${other.host}, since ${other.started}`
        : 'unknown owner';
      if (other && other.host === mine.host && !(await pidAlive(other.pid))) {
        log.warn(`${file}: the conversion that owned it (${owner}) is gone; cleaning up after it`);
        await cleanStale(other);
        await node.remove(file);
        continue;
      }
      throw new ConversionError(`another conversion of ${name} into ${dir} is running (${owner})`, {
        hint: `wait for it; if no conversion runs any more (e.g. its host crashed), remove ${file}`,
      });
    }
    throw new ConversionError(`${file}: could not take the run record`);
  }

  private static async read(node: Node, file: string): Promise<RunRecordData | undefined> {
    try {
      return JSON.parse((await node.readFile(file)).toString()) as RunRecordData;
    } catch {
      return undefined;
    }
  }

  /** Records more of what the run may leave behind. */
  async update(patch: Partial<RunRecordData>): Promise<void> {
    this.data = { ...this.data, ...patch };
    await this.node.writeFileAtomic(this.path, `${JSON.stringify(this.data, null, 2)}\n`, {
      mode: 0o644,
    });
  }

  async release(): Promise<void> {
    await this.node.remove(this.path);
  }
}
