/**
 * `v2v-load batch --queue` end to end: a redis-server of the test's own (loopback, a password,
 * an append-only file), a libvirtd of the test's own, and two worker processes, one of them in a
 * network namespace of its own (a second host: it reaches Redis over a veth pair, libvirtd over
 * its unix socket).
 *
 * - 20 copies of the tiny VMware guest and one broken item (its disk is missing), with the test
 *   stand-in converter (fast-converter.ts: the disks copied by qemu-img, the guest not changed)
 *   and the real place, define and start (one item also waits for its boot). Redis is restarted
 *   in the middle and stays away longer than the workers' lock: the stages in flight lose their
 *   jobs, stop, and the queue hands the jobs over (a stage whose result was lost runs again and
 *   resumes). Then libvirtd is killed until a define stage meets it (retried after its backoff,
 *   then done). 20 done, each exactly once (one domain each, each stage done once), spread
 *   over both workers; the broken item failed with its reason, never tried again; an item whose
 *   import record is busy (a live process holds it) tried again after a pause, then done; three
 *   items asking for a label taken by the worker with it; nothing left in the pool.
 * - 2 items with the real converter: the worker converting the first is killed with SIGKILL in
 *   the middle of its conversion; BullMQ's stalled-job check hands the job to the other worker,
 *   whose stage first removes what the dead one left: both done, no duplicate domain, no
 *   leftover file or process.
 * - The clear errors: Redis unreachable, a refused password, no such batch, a batch name
 *   enqueued twice; the password is never printed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchReport } from '../../src/batch/report.js';
import { scratchOwner } from '../../src/node/scratch.js';
import { cli } from '../harness/cli.js';
import { createNetns, type TestNetns } from '../harness/netns.js';
import { type PrivateLibvirtd, startPrivateLibvirtd } from '../harness/private-libvirtd.js';
import { type PrivateRedis, startPrivateRedis } from '../harness/redis.js';
import { tinyVmwareCopies, tinyVmwareGuest } from '../harness/tiny-vmware-guest.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const FAST_CLI = ['node', '--import', 'tsx', path.join(ROOT, 'test/harness/fast-cli.ts')];
const REAL_CLI = ['node', path.join(ROOT, 'bin/v2v-load.js')];
const PASSWORD = 'q-s3cret-7Hx2';

let work: string;
let lv: PrivateLibvirtd;
let redis: PrivateRedis;
let ns: TestNetns;
let tiny: Awaited<ReturnType<typeof tinyVmwareGuest>>;
const workers: Worker[] = [];
/** Every byte any process of this test printed: the password must never be in it. */
let printed = '';

interface Worker {
  name: string;
  child: ChildProcess;
  events: Record<string, unknown>[];
  stderr: string;
  exited: Promise<void>;
}

function startWorker(
  name: string,
  cmd: string[],
  queueHost: string,
  extra: string[] = [],
  inNetns = false,
): Worker {
  const argv = [
    ...cmd,
    'worker',
    '--queue',
    `redis://${queueHost}:${redis.port}/0`,
    '--worker-name',
    name,
    '--lock-timeout',
    '8',
    '--json',
    // Debug lines on stderr: the story of an item that fails unexpectedly (and no password).
    '-v',
    ...extra,
  ];
  const full = inNetns ? ns.argv(argv) : argv;
  const child = spawn(full[0] as string, full.slice(1), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, V2V_LOAD_REDIS_PASSWORD: PASSWORD },
  });
  const w: Worker = {
    name,
    child,
    events: [],
    stderr: '',
    exited: new Promise((r) => child.on('exit', () => r())),
  };
  let rest = '';
  child.stdout?.on('data', (d: Buffer) => {
    printed += d.toString();
    rest += d.toString();
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('{')) w.events.push(JSON.parse(l));
  });
  child.stderr?.on('data', (d: Buffer) => {
    printed += d.toString();
    w.stderr += d.toString();
  });
  workers.push(w);
  return w;
}

async function stopWorker(w: Worker): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await w.exited;
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `v2v-load batch ...` as a process (the password from the environment). */
async function batchCli(args: string[]): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(FAST_CLI[0] as string, [...FAST_CLI.slice(1), 'batch', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, V2V_LOAD_REDIS_PASSWORD: PASSWORD },
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      printed += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      printed += d.toString();
    });
    child.on('exit', (status) => resolve({ status, stdout }));
  });
}

async function writeManifest(
  file: string,
  pool: string,
  items: { name: string; verifyBoot?: boolean; label?: string }[],
): Promise<void> {
  await fs.mkdir(pool, { recursive: true, mode: 0o755 });
  await fs.writeFile(
    file,
    [
      'defaults:',
      `  connect: "${lv.uri}"`,
      `  pool: ${pool}`,
      '  domainType: qemu',
      '  verifyTimeout: 240',
      'items:',
      ...items.flatMap((i) => [
        `  - source: sources/${i.name}.vmx`,
        `    name: ${i.name}`,
        ...(i.verifyBoot ? ['    verifyBoot: true'] : []),
        ...(i.label ? [`    label: ${i.label}`] : []),
      ]),
      '',
    ].join('\n'),
  );
}

async function removeDomains(names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map(async (n) => {
      await exec('virsh', ['-c', lv.uri, 'destroy', n]).catch(() => {});
      await exec('virsh', ['-c', lv.uri, 'undefine', n]);
    }),
  );
}

/** The scratch folders in /var/tmp now (other runs' too: compare before and after). */
async function scratchFolders(): Promise<string[]> {
  return (await fs.readdir('/var/tmp')).filter((f) => scratchOwner(f)).sort();
}

async function domains(): Promise<string[]> {
  const { stdout } = await exec('virsh', ['-c', lv.uri, 'list', '--all', '--name']);
  return stdout.split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  work = await fs.mkdtemp('/var/tmp/v2v-load-queue-test-');
  await fs.chmod(work, 0o755);
  ns = await createNetns();
  const [t, libvirtd, r] = await Promise.all([
    tinyVmwareGuest(),
    startPrivateLibvirtd(),
    startPrivateRedis({ bind: [ns.hostAddress], password: PASSWORD }),
  ]);
  tiny = t;
  lv = libvirtd;
  redis = r;
  await fs.mkdir(path.join(work, 'sources'), { mode: 0o755 });
}, 900_000);

afterAll(async () => {
  for (const w of workers) await stopWorker(w);
  await lv?.stop();
  await redis?.stop();
  await ns?.remove();
  if (work) await fs.rm(work, { recursive: true, force: true });
  expect(printed).not.toContain(PASSWORD);
});

describe('batch on a queue, two workers (one in a network namespace of its own)', () => {
  it('20 items and a broken one, through a Redis restart: 20 done once each, 1 failed', async () => {
    const scratchBefore = await scratchFolders();
    const names = Array.from({ length: 20 }, (_, i) => `v2vq-${i + 1}`);
    await tinyVmwareCopies(tiny, path.join(work, 'sources'), names);
    await tinyVmwareCopies(
      { ...tiny, vmdk: path.join(work, 'sources', 'missing-disk.vmdk') },
      path.join(work, 'sources'),
      ['v2vq-broken'],
    );
    const pool = path.join(work, 'pool');
    const manifest = path.join(work, 'wave.yaml');
    // The item that also waits for its boot goes first (before 19 more guests load the CPU).
    // Three items ask for a label only the namespace's worker has.
    const labelled = ['v2vq-2', 'v2vq-9', 'v2vq-16'];
    const items = names.map((name) => ({
      name,
      verifyBoot: name === 'v2vq-1',
      ...(labelled.includes(name) ? { label: 'ds-netns' } : {}),
    }));
    items.splice(5, 0, { name: 'v2vq-broken', verifyBoot: false });
    await writeManifest(manifest, pool, items);

    const a = startWorker('local', FAST_CLI, '127.0.0.1', ['--concurrency', '2']);
    const b = startWorker(
      'netns',
      FAST_CLI,
      ns.hostAddress,
      ['--concurrency', '2', '--label', 'ds-netns'],
      true,
    );
    await until(
      () => [a, b].every((w) => w.events.some((e) => e.event === 'ready')),
      120_000,
      `both workers ready: ${a.stderr}${b.stderr}`,
    );

    // v2vq-20's import record is held by a live process (this one): its convert fails as
    // busy, which is tried again after a pause; the record goes once that failure is seen.
    const busyRecord = path.join(pool, '.v2vq-20.v2v-load-import');
    await fs.writeFile(
      busyRecord,
      JSON.stringify({
        host: os.hostname(),
        pid: process.pid,
        started: new Date().toISOString(),
        outputs: [],
        uri: lv.uri,
      }),
    );
    const busySeen = until(
      () =>
        a.events
          .concat(b.events)
          .some(
            (e) =>
              e.event === 'stage' &&
              e.state === 'failed' &&
              e.job === 'wave/v2vq-20/convert' &&
              e.retry === true,
          ),
      300_000,
      'the busy item to fail once',
    ).then(() => fs.rm(busyRecord));

    // Enqueued, it returns at once with the batch's name.
    const queue = `redis://127.0.0.1:${redis.port}/0`;
    const enq = await batchCli([manifest, '--queue', queue]);
    expect(enq.status).toBe(0);
    expect(enq.stdout.trim()).toBe('wave');

    // Redis is restarted once 5 items are done, and stays away longer than the workers' lock
    // (8 s): the stages in flight lose their jobs, stop, and the queue hands the jobs over.
    const done = () => a.events.concat(b.events).filter((e) => e.event === 'item').length;
    await until(() => done() >= 5, 300_000, '5 items done');
    const before = redis.pid();
    await redis.restart({ downMs: 12_000 });
    const doneAtRestart = done();
    expect(redis.pid()).not.toBe(before);
    expect(doneAtRestart).toBeLessThan(21); // the batch was in the middle

    // libvirtd goes away while items are being defined: a stage that meets it is retried after
    // its backoff (it is up again by then), never failed. It is started again once one stage
    // failed for it (or after 60 s, when no stage needed it meanwhile).
    // (A stage may also be retried because the run before it, which lost its job in the Redis
    // outage, is still stopping: that one says so, not libvirtd.)
    const libvirtdRetry = (e: Record<string, unknown>) =>
      e.event === 'stage' &&
      e.state === 'failed' &&
      e.retry === true &&
      !String(e.job).endsWith('/convert') &&
      /libvirt/i.test(String(e.message));
    await until(() => done() >= doneAtRestart + 3, 300_000, '3 more items done');
    await lv.kill();
    await until(
      () => a.events.concat(b.events).some(libvirtdRetry),
      60_000,
      'a stage to meet the dead libvirtd',
    ).catch(() => {});
    await lv.start();

    await busySeen;
    const html = path.join(work, 'wave.html');
    const json = path.join(work, 'wave.json');
    const status = await batchCli([
      'status',
      'wave',
      '--queue',
      queue,
      '--follow',
      '--json',
      '--report',
      json,
      '--report',
      html,
    ]);
    expect(status.status).toBe(1); // the broken item
    const report = JSON.parse(await fs.readFile(json, 'utf8')) as BatchReport;
    // Every failed item with its stage and reason (the broken one only), then the counts. When
    // another failed, the message tells its story: what each worker said about it.
    const notDone = report.items.filter((i) => i.status !== 'done');
    const story = notDone
      .flatMap((i) =>
        [a, b].flatMap((w) => [
          ...w.events
            .filter((e) => String(e.job).includes(`/${i.key}/`) || e.job === `wave/${i.key}`)
            .map((e) => `${w.name}: ${JSON.stringify(e)}`),
          ...w.stderr
            .split('\n')
            .filter((l) => l.includes(i.key))
            .map((l) => `${w.name} stderr: ${l}`),
        ]),
      )
      .join('\n');
    expect(
      notDone.map((i) => `${i.key} ${i.status} at ${i.failedStage}: ${i.error}`),
      story,
    ).toEqual([expect.stringMatching(/^v2vq-broken failed at prepare: .*missing-disk\.vmdk/)]);
    expect(report.counts).toMatchObject({ done: 20, failed: 1, pending: 0, running: 0 });
    const broken = report.items.find((i) => i.key === 'v2vq-broken');
    expect(broken?.status).toBe('failed');
    expect(broken?.error).toContain('missing-disk.vmdk');
    expect(broken?.failedStage).toBe('prepare');
    expect(broken?.attempts).toBe(1); // bad input: never tried again
    expect(report.items.find((i) => i.key === 'v2vq-1')?.booted).toBe(true);
    // The busy one: tried again (a retryable failure), then done.
    const metLibvirtd = a.events
      .concat(b.events)
      .filter(libvirtdRetry)
      .map((e) => String(e.job).split('/')[1]);
    expect(report.items.find((i) => i.key === 'v2vq-20')?.status).toBe('done');
    expect(report.items.find((i) => i.key === 'v2vq-20')?.attempts).toBeGreaterThanOrEqual(2);
    // The stages that lost their job in the Redis outage stopped, and were done once elsewhere
    // or again (below: each stage done exactly once). How many did varies (none when every
    // stage in flight had finished and only its result was lost: it runs again and resumes).
    const lost = a.events.concat(b.events).filter((e) => e.event === 'stage' && e.state === 'lost');
    // The items whose stage met the dead libvirtd: tried again, then done; their error said so.
    expect(metLibvirtd.length).toBeGreaterThan(0);
    for (const k of metLibvirtd) {
      const it = report.items.find((i) => i.key === k);
      expect(it?.status, k).toBe('done');
      expect(it?.attempts, k).toBeGreaterThan(1);
    }
    const unreachable = a.events.concat(b.events).find(libvirtdRetry);
    expect(JSON.stringify(unreachable)).toMatch(/libvirtd|libvirt/i);
    for (const i of report.items.filter((x) => x.status === 'done')) {
      expect(i.bytes, i.key).toBeGreaterThan(0);
      expect(i.state, i.key).toBe('running');
      expect(['local', 'netns'], i.key).toContain(i.worker);
    }
    expect(report.queue?.workers.sort()).toEqual(['local', 'netns']);
    // Work was spread: each worker converted some items.
    const converts = (w: Worker) =>
      w.events.filter(
        (e) => e.event === 'stage' && e.state === 'done' && String(e.job).endsWith('/convert'),
      ).length;
    expect(converts(a)).toBeGreaterThan(0);
    expect(converts(b)).toBeGreaterThan(0);
    // The labelled items went to the worker with the label only.
    for (const k of labelled) {
      const job = `wave/${k}/convert`;
      expect(b.events.some((e) => e.event === 'stage' && e.state === 'done' && e.job === job)).toBe(
        true,
      );
      expect(a.events.some((e) => e.event === 'stage' && e.job === job)).toBe(false);
    }
    // Each stage of each item done exactly once (by either worker).
    const stageDone = a.events
      .concat(b.events)
      .filter((e) => e.event === 'stage' && e.state === 'done')
      .map((e) => String(e.job));
    expect(new Set(stageDone).size).toBe(stageDone.length);
    expect(stageDone.length).toBe(20 * 3 + 1);
    // The status table (terminal form) names the workers.
    const table = await batchCli(['status', 'wave', '--queue', queue]);
    expect(table.stdout).toMatch(/WORKER/);
    expect(table.stdout).toContain('20 done, 1 failed');
    expect(await fs.readFile(html, 'utf8')).toContain('worker netns');

    // No scratch folder of a stage run is left, not even of one stopped when it lost its job.
    // (The runs may have swept folders of dead runs from before: those may be gone.)
    const scratchAfter = await scratchFolders();
    expect(scratchAfter.filter((f) => !scratchBefore.includes(f))).toEqual([]);
    // On the node: 20 domains, each once, running; in the pool only their files.
    expect(await domains()).toEqual([...names].sort());
    const files = (await fs.readdir(pool)).sort();
    expect(files).toEqual(
      names.flatMap((n) => [`${n}-console.log`, `${n}-sda.qcow2`, `${n}.xml`]).sort(),
    );
    await removeDomains(names);
    await stopWorker(a);
    await stopWorker(b);
    expect(a.child.exitCode).toBe(143);
    process.stdout.write(
      `queue test: 21 items in ${report.seconds} s, ${converts(a)}+${converts(b)} converted by local+netns, ${doneAtRestart} done at the Redis restart, ${lost.length} stages lost their job in it\n`,
    );
  });

  it('real conversions: a worker killed (SIGKILL) in the middle of one; the other finishes it', async () => {
    // Independent of the test before: its workers stopped, its domains gone (also when it failed).
    for (const w of workers) await stopWorker(w);
    await removeDomains(await domains());
    const names = ['v2vq-real-1', 'v2vq-real-2'];
    await tinyVmwareCopies(tiny, path.join(work, 'sources'), names);
    const pool = path.join(work, 'pool-real');
    const manifest = path.join(work, 'real.yaml');
    await writeManifest(
      manifest,
      pool,
      names.map((name) => ({ name })),
    );
    const a = startWorker('real-local', REAL_CLI, '127.0.0.1');
    const b = startWorker('real-netns', REAL_CLI, ns.hostAddress, [], true);
    await until(
      () => [a, b].every((w) => w.events.some((e) => e.event === 'ready')),
      120_000,
      'both workers ready',
    );
    const queue = `redis://127.0.0.1:${redis.port}/0`;
    expect((await batchCli([manifest, '--queue', queue, '--name', 'real'])).status).toBe(0);

    // The local worker's conversion: killed once its overlay is in the pool (the appliance
    // converts it) and some seconds have passed.
    let job = '';
    await until(
      () => {
        const e = a.events.find((x) => x.event === 'stage' && x.state === 'start');
        job = e ? String(e.job) : '';
        return !!job;
      },
      120_000,
      'the local worker to take a conversion',
    );
    const item = job.split('/')[1] as string;
    await until(
      async () => (await fs.readdir(pool)).some((f) => f.startsWith(`.${item}-sda.qcow2.tmp`)),
      180_000,
      'the conversion to write its overlay',
    );
    await new Promise((r) => setTimeout(r, 5000));
    const { stdout: tree } = await exec('ps', ['-eo', 'pid=,ppid=,pgid=']);
    const pid = a.child.pid as number;
    const family = new Set([pid]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const line of tree.trim().split('\n')) {
        const [p, pp] = line.trim().split(/\s+/).map(Number) as [number, number];
        if (family.has(pp) && !family.has(p)) {
          family.add(p);
          grew = true;
        }
      }
    }
    a.child.kill('SIGKILL');
    await a.exited;

    const json = path.join(work, 'real.json');
    const status = await batchCli([
      'status',
      'real',
      '--queue',
      queue,
      '--follow',
      '--report',
      json,
    ]);
    expect(status.status).toBe(0);
    const report = JSON.parse(await fs.readFile(json, 'utf8')) as BatchReport;
    expect(report.counts).toMatchObject({ done: 2, failed: 0 });
    const killed = report.items.find((i) => i.key === item);
    expect(killed?.worker).toBe('real-netns');
    expect(killed?.attempts).toBeGreaterThan(1); // started again after the stall
    expect(killed?.stageMs.convert).toBeGreaterThan(0);
    // The other worker took the job over and cleaned up first.
    expect(
      b.events.filter((e) => e.event === 'stage' && e.state === 'start' && e.job === job).length,
    ).toBe(1);

    // One domain each, running; no leftover file; the dead worker's processes are gone.
    expect(await domains()).toEqual([...names].sort());
    const files = (await fs.readdir(pool)).sort();
    expect(files).toEqual(
      names.flatMap((n) => [`${n}-console.log`, `${n}-sda.qcow2`, `${n}.xml`]).sort(),
    );
    await until(
      async () => {
        const { stdout } = await exec('ps', ['-eo', 'pid=,stat=']);
        const alive = stdout
          .trim()
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter(([p, st]) => family.has(Number(p)) && !st?.startsWith('Z'));
        return alive.length === 0;
      },
      60_000,
      "the killed worker's processes to end",
    );
    await removeDomains(names);
    await stopWorker(b);
  });

  it('clear errors: Redis unreachable, a refused password, no such batch, a name enqueued twice', async () => {
    const manifest = path.join(work, 'wave.yaml');
    const down = await cli('batch', 'status', 'wave', '--queue', 'redis://127.0.0.1:1/0');
    expect(down.status).toBe(3);
    expect(down.stderr).toContain('--queue redis://127.0.0.1:1/0: Redis does not answer');
    const wrong = await cli(
      'batch',
      'status',
      'wave',
      '--queue',
      `redis://:not-${PASSWORD}@127.0.0.1:${redis.port}/0`,
    );
    expect(wrong.status).toBe(3);
    expect(wrong.stderr).toContain('Redis refused the password');
    printed += wrong.stdout + wrong.stderr;
    const noPassword = await cli('batch', 'status', 'x', '--queue', redis.url);
    expect(noPassword.status).toBe(3);
    expect(noPassword.stderr).toContain('Redis wants a password');
    const withPassword = `redis://:${PASSWORD}@127.0.0.1:${redis.port}/0`;
    const none = await cli('batch', 'status', 'nosuch', '--queue', withPassword, '--json');
    expect(none.status).toBe(1);
    expect(none.stderr).toContain(`no batch named nosuch on redis://127.0.0.1:${redis.port}/0`);
    expect(none.stderr).toContain('batches there: real, wave');
    const twice = await cli('batch', manifest, '--queue', withPassword);
    expect(twice.status).toBe(1);
    expect(twice.stderr).toContain(`batch wave is on redis://127.0.0.1:${redis.port}/0 already`);
    printed += none.stdout + none.stderr + twice.stdout + twice.stderr;
    const usage = await cli('batch', manifest, '--queue', withPassword, '--state', '/tmp/x');
    expect(usage.status).toBe(2);
  });
});
