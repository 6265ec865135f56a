/**
 * Scratch folders name their owner (host tag and pid); the sweep removes those of this host
 * whose process is gone, and nothing else. Real processes (a finished `true` for a dead pid, a
 * running `sleep` for a live one) on the real local node, in a temp dir of the test's own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalNode } from '../../src/node/local-node.js';
import { pidAlive } from '../../src/node/pid-alive.js';
import {
  hostTag,
  scratchName,
  scratchOwner,
  scratchParents,
  sweepDeadScratch,
} from '../../src/node/scratch.js';

let dir: string;
let sleeper: ChildProcess;
let deadPid: number;

async function finishedPid(): Promise<number> {
  const c = spawn('true');
  await new Promise((r) => c.once('exit', r));
  return c.pid as number;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-sweep-test-'));
  sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
  deadPid = await finishedPid();
});

afterAll(async () => {
  sleeper.kill('SIGKILL');
  await fs.rm(dir, { recursive: true, force: true });
});

describe('scratch names', () => {
  it('carry this host and this process, and parse back', () => {
    const n = path.basename(scratchName(`${dir}/v2v-load-convert-`));
    expect(n).toMatch(/^v2v-load-convert-[0-9a-f]{8}-\d+-[0-9a-f]{12}$/);
    expect(scratchOwner(n)).toEqual({ host: hostTag(), pid: process.pid });
    expect(scratchOwner(path.basename(scratchName('/var/tmp/v2v-load-virtio-win-')))?.pid).toBe(
      process.pid,
    );
  });

  it('other names are no scratch folder of a run', () => {
    for (const n of [
      'v2v-load-fixtures',
      'v2v-load-convert-it-AbC123',
      'v2v-load-convert-0123456789ab',
      `v2v-load-convert-${hostTag()}-0-0123456789ab`,
      `other-${hostTag()}-12-0123456789ab`,
      `v2v-load-convert-${hostTag()}-12-0123456789ab.tmp`,
    ]) {
      expect(scratchOwner(n), n).toBeUndefined();
    }
  });

  it('the host tag names the hostname and the pid namespace', () => {
    expect(hostTag('a', 'pid:[1]')).toBe(hostTag('a', 'pid:[1]'));
    expect(hostTag('a', 'pid:[1]')).not.toBe(hostTag('b', 'pid:[1]'));
    expect(hostTag('a', 'pid:[1]')).not.toBe(hostTag('a', 'pid:[2]'));
    expect(hostTag()).toMatch(/^[0-9a-f]{8}$/);
  });

  it('the parents: /var/tmp, /tmp and a given --tmp-dir, once each', () => {
    expect(scratchParents()).toEqual(['/var/tmp', '/tmp']);
    expect(scratchParents('/srv/big/')).toEqual(['/var/tmp', '/tmp', '/srv/big']);
    expect(scratchParents('/tmp')).toEqual(['/var/tmp', '/tmp']);
    expect(scratchParents('  ')).toEqual(['/var/tmp', '/tmp']);
  });
});

describe('sweepDeadScratch', () => {
  it('removes the folders of a dead process of this host, keeps the rest', async () => {
    expect(await pidAlive(deadPid)).toBe(false);
    expect(await pidAlive(sleeper.pid as number)).toBe(true);
    expect(await pidAlive(1)).toBe(true);
    const tag = hostTag();
    const mk = async (name: string, file = true) => {
      const p = path.join(dir, name);
      await fs.mkdir(p);
      if (file) await fs.writeFile(path.join(p, 'disk.qcow2'), 'x');
      return p;
    };
    const dead = await mk(`v2v-load-ova-${tag}-${deadPid}-0123456789ab`);
    const deadEmpty = await mk(`v2v-load-convert-${tag}-${deadPid}-abcdefabcdef`, false);
    const live = await mk(`v2v-load-convert-${tag}-${sleeper.pid}-0123456789ab`);
    const mine = await mk(path.basename(scratchName('v2v-load-import-')));
    const otherHost = await mk(`v2v-load-convert-${hostTag('elsewhere')}-${deadPid}-0123456789ab`);
    const unnamed = await mk('v2v-load-convert-0123456789ab');
    // A file (not a folder) under a scratch name is not touched either.
    const file = path.join(dir, `v2v-load-verify-${tag}-${deadPid}-0123456789ab`);
    await fs.writeFile(file, 'canary');

    const lines: string[] = [];
    const log = {
      debug: () => {},
      info: (m: string) => lines.push(m),
      warn: () => {},
      error: () => {},
    };
    const removed = await sweepDeadScratch(new LocalNode(), {
      parents: [dir, path.join(dir, 'missing')],
      log,
    });
    expect(removed.sort()).toEqual([dead, deadEmpty].sort());
    const left = (await fs.readdir(dir)).map((f) => path.join(dir, f)).sort();
    expect(left).toEqual([live, mine, otherHost, unnamed, file].sort());
    expect(await fs.readFile(file, 'utf8')).toBe('canary');
    expect(lines.join('\n')).toContain(`pid ${deadPid}`);

    // A second sweep finds nothing more.
    expect(await sweepDeadScratch(new LocalNode(), { parents: [dir] })).toEqual([]);
  });

  it('a process that is alive keeps its folder, whatever the liveness check says of others', async () => {
    const sub = path.join(dir, 'second');
    await fs.mkdir(sub);
    const p = path.join(sub, `v2v-load-verify-${hostTag()}-424242-0123456789ab`);
    await fs.mkdir(p);
    const removed = await sweepDeadScratch(new LocalNode(), {
      parents: [sub],
      alive: (pid) => pid === 424242,
    });
    expect(removed).toEqual([]);
    await expect(fs.stat(p)).resolves.toBeDefined();
    expect(
      await sweepDeadScratch(new LocalNode(), { parents: [sub], alive: (pid) => pid !== 424242 }),
    ).toEqual([p]);
  });
});
