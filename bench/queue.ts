/**
 * queue: 20 small VMware guests (copies of the tiny guest, test/harness/tiny-vmware-guest.ts)
 * as one batch on a queue (a private redis-server on loopback), converted by the real
 * converter, placed, defined and started on the local libvirt by 1 worker, then by 2 workers
 * (separate `v2v-load worker` processes, concurrency 1 each) on this 2-core machine. The
 * domains and files are removed after each run. `V2V_LOAD_BENCH_CONVERTER=fast` swaps in the
 * test stand-in converter (the disks copied, the guest not changed): the queue's own costs.
 * The queue's overhead is the time per item not spent in a stage: the workers' time (from the
 * first stage's start to the last item's end) outside stage jobs, per item (the hand-overs from
 * one stage to the next, through Redis).
 * {"bench":"queue","s_w1":..,"s_w2":..,"speedup":..,"queue_overhead_ms_per_item":..}
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadManifest } from '../src/batch/manifest.js';
import { QueueClient } from '../src/batch/queue/client.js';
import { parseQueueUrl } from '../src/batch/queue/connection.js';
import { startPrivateRedis } from '../test/harness/redis.js';
import { tinyVmwareCopies, tinyVmwareGuest } from '../test/harness/tiny-vmware-guest.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const DIR = '/var/tmp/v2v-load-bench';
const ITEMS = 20;

async function removeDomains(names: readonly string[]): Promise<void> {
  for (const n of names) {
    await exec('virsh', ['-c', 'qemu:///system', 'destroy', n]).catch(() => {});
    await exec('virsh', ['-c', 'qemu:///system', 'undefine', n]).catch(() => {});
  }
}

/** `V2V_LOAD_BENCH_CONVERTER=fast`: the test stand-in converter (test/harness/fast-converter.ts). */
const FAST = process.env.V2V_LOAD_BENCH_CONVERTER === 'fast';

function worker(url: string, name: string): { child: ChildProcess; done: Promise<void> } {
  const cli = FAST
    ? ['--import', 'tsx', path.join(ROOT, 'test/harness/fast-cli.ts')]
    : [path.join(ROOT, 'bin/v2v-load.js')];
  const child = spawn('node', [...cli, 'worker', '--queue', url, '--worker-name', name, '-q'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    // As the tests run it here: no working KVM on these machines (see ENVIRONMENT.md).
    env: {
      ...process.env,
      LIBGUESTFS_BACKEND: 'direct',
      LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg',
    },
  });
  return { child, done: new Promise((r) => child.on('exit', () => r())) };
}

export async function run(): Promise<void> {
  // The workers run the built CLI: build it (tsc emits even when it reports errors).
  await exec('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT }).catch(() => {});
  await fs.mkdir(DIR, { recursive: true, mode: 0o755 });
  const work = await fs.mkdtemp(path.join(DIR, 'queue-'));
  await fs.chmod(work, 0o755);
  const tiny = await tinyVmwareGuest();
  const redis = await startPrivateRedis();
  const client = new QueueClient(parseQueueUrl(redis.url));
  const result: Record<string, number> = {};
  const overheads: number[] = [];
  try {
    for (const w of [1, 2]) {
      const names = Array.from({ length: ITEMS }, (_, i) => `v2vqbench-w${w}-${i + 1}`);
      const dir = path.join(work, `w${w}`);
      const pool = path.join(dir, 'pool');
      await fs.mkdir(pool, { recursive: true, mode: 0o755 });
      await fs.chmod(dir, 0o755);
      const vmxs = await tinyVmwareCopies(tiny, dir, names);
      const file = path.join(dir, 'wave.json');
      await fs.writeFile(
        file,
        JSON.stringify({
          defaults: { pool, domainType: 'qemu', start: true },
          items: vmxs.map((source, i) => ({ source, name: names[i] })),
        }),
      );
      const workers = Array.from({ length: w }, (_, i) => worker(redis.url, `bench-${i + 1}`));
      const t0 = performance.now();
      await client.enqueue(await loadManifest(file), `w${w}`);
      const report = await client.follow(`w${w}`, () => {});
      const s = (performance.now() - t0) / 1000;
      for (const x of workers) x.child.kill('SIGTERM');
      await Promise.all(workers.map((x) => x.done));
      const timings = await client.timings(`w${w}`);
      await removeDomains(names);
      if (report.counts.done !== ITEMS) {
        const why = report.items
          .filter((i) => i.status !== 'done')
          .map((i) => `${i.key}: ${i.error}`);
        throw new Error(`bench queue: ${w} workers: not all items done:\n${why.join('\n')}`);
      }
      // The workers' time (w slots, from the first stage's start to the last item's end) not
      // spent in a stage job, per item: the hand-overs through the queue.
      const first = Math.min(...timings.map((t) => t.start));
      const last = Math.max(...timings.map((t) => t.end));
      const inStages = timings.reduce((a, t) => a + t.inStages, 0);
      const per = Math.max(0, ((last - first) * w - inStages) / ITEMS);
      overheads.push(per);
      // An item's own span outside its stages (hand-overs and waiting for a free worker).
      const span = timings.reduce((a, t) => a + (t.end - t.start - t.inStages), 0) / ITEMS;
      const conv = report.items.map((i) => (i.stageMs.convert ?? 0) / 1000);
      process.stdout.write(
        `${w} worker${w > 1 ? 's' : ''}: ${ITEMS} items in ${s.toFixed(1)} s (convert per item ${Math.min(...conv).toFixed(1)}-${Math.max(...conv).toFixed(1)} s; worker time outside stages ${Math.round(per)} ms per item; an item's span outside its stages ${Math.round(span)} ms)\n`,
      );
      result[`s_w${w}`] = Math.round(s * 10) / 10;
    }
  } finally {
    await client.close();
    await redis.stop();
    await fs.rm(work, { recursive: true, force: true });
  }
  const speedup = Math.round(((result.s_w1 ?? 0) / (result.s_w2 ?? 1)) * 100) / 100;
  const overhead = Math.round(overheads.reduce((a, b) => a + b, 0) / Math.max(1, overheads.length));
  process.stdout.write(
    `${JSON.stringify({ bench: 'queue', ...result, speedup, queue_overhead_ms_per_item: overhead, converter: FAST ? 'fast' : 'real' })}\n`,
  );
}
