/**
 * The import record of staged (queue) imports: the next stage run takes it over only once the
 * run before is no longer at work — ended, its process dead, or (another machine) its beat stale
 * — and the record's writes never lose a patch to a concurrent beat.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImportBusyError } from '../../src/import/errors.js';
import { ImportRecord, type ImportRecordData, LEASE_MS } from '../../src/import/import-record.js';
import { LocalNode } from '../../src/node/local-node.js';
import { silentLog } from '../harness/mem-guest.js';

const node = new LocalNode();
const OWNER = 'queue:wave/v2vq-1';
let pool: string;

beforeEach(async () => {
  pool = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-record-'));
});
afterEach(async () => {
  await fs.rm(pool, { recursive: true, force: true });
});

const file = () => ImportRecord.fileFor(pool, 'v2vq-1');
const onDisk = async () => JSON.parse(await fs.readFile(file(), 'utf8')) as ImportRecordData;
/** `owner` null: an import that is not staged. */
function acquire(stale: ImportRecordData[] = [], owner: string | null = OWNER) {
  return ImportRecord.acquire(
    node,
    pool,
    'v2vq-1',
    'qemu:///system',
    silentLog,
    async (s) => {
      stale.push(s);
    },
    owner ?? undefined,
  );
}
/** A record some other run left, as it would be on disk. */
async function leave(active: ImportRecordData['active']): Promise<void> {
  const data: ImportRecordData = {
    host: active?.host ?? os.hostname(),
    pid: active?.pid ?? process.pid,
    started: new Date().toISOString(),
    outputs: [],
    uri: 'qemu:///system',
    owner: OWNER,
    ...(active ? { active } : {}),
  };
  await fs.writeFile(file(), JSON.stringify(data));
}

describe('import record: stage runs of one queue item', () => {
  it('a run at work in this process keeps the next one out; once paused, the next takes it', async () => {
    const first = await acquire();
    const mine = (await onDisk()).active;
    expect(mine).toMatchObject({ host: os.hostname(), pid: process.pid });
    const busy = await acquire().catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(ImportBusyError);
    expect(String(busy)).toContain(`an earlier run of ${OWNER} is still at work on v2vq-1`);

    await first.update({ domainUuid: 'u-1' });
    await first.pause();
    expect((await onDisk()).active).toBeUndefined();
    expect((await onDisk()).domainUuid).toBe('u-1');
    await first.update({ defined: true }); // after pause: nothing written
    expect((await onDisk()).defined).toBeUndefined();

    const stale: ImportRecordData[] = [];
    const second = await acquire(stale);
    expect(stale.map((s) => s.domainUuid)).toEqual(['u-1']);
    expect((await onDisk()).active?.run).not.toBe(mine?.run);
    await second.release();
    await second.pause(); // after release: the file is not made again
    await expect(fs.stat(file())).rejects.toThrow(/ENOENT/);
  });

  it("another process's run: busy while it lives, taken over once it is dead", async () => {
    const child = spawn('sleep', ['30']);
    const pid = child.pid as number;
    await leave({ host: os.hostname(), pid, run: 'r', beat: new Date().toISOString() });
    await expect(acquire()).rejects.toThrow(`(pid ${pid} on ${os.hostname()}`);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    const stale: ImportRecordData[] = [];
    const r = await acquire(stale);
    expect(stale).toHaveLength(1);
    await r.release();
  });

  it("another machine's run: busy while its beat is fresh, taken over once it is stale", async () => {
    const other = { host: 'conv-host-2.example', pid: 4242, run: 'r' };
    await leave({ ...other, beat: new Date(Date.now() - 2_000).toISOString() });
    await expect(acquire()).rejects.toBeInstanceOf(ImportBusyError);
    await leave({ ...other, beat: new Date(Date.now() - LEASE_MS - 1_000).toISOString() });
    const stale: ImportRecordData[] = [];
    const r = await acquire(stale);
    expect(stale[0]?.active?.host).toBe('conv-host-2.example');
    await r.release();
  });

  it('a record without a run at work (the stage before ended) is taken over at once', async () => {
    await leave(undefined);
    const r = await acquire();
    await r.release();
  });

  it('an import that is not staged never takes over a live holder', async () => {
    const first = await acquire([], null);
    expect((await onDisk()).active).toBeUndefined();
    await expect(acquire([], null)).rejects.toThrow(/another import of v2vq-1 .* is running/);
    await first.release();
  });

  it('updates written one after another: the last write holds every patch', async () => {
    const r = await acquire();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => r.update({ outputs: [...r.value.outputs, `f${i}`] })),
    );
    expect((await onDisk()).outputs).toEqual(Array.from({ length: 20 }, (_, i) => `f${i}`));
    await r.release();
  });
});
