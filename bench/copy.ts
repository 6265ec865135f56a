/**
 * copy: the storage layer's copy mode (qemu-img convert of a 2 GiB raw image with ~1 GiB
 * allocated into qcow2, through the source check, measure, the free-space check, a temporary
 * name and the rename) versus `cp --sparse=always` of the same raw file. One run is noisy on
 * a shared machine, so they alternate (ours, cp, ours, cp, ...) for `PAIRS` pairs (env
 * V2V_BENCH_PAIRS, default 5), page cache dropped before each when possible, and the medians
 * are reported with every run's figures. Throughput = allocated bytes / seconds;
 * {"bench":"copy","ratio":..,"ours_s":..,"cp_s":..,"runs":[..]} with ratio = ours / cp's
 * (median throughputs).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NodeFactory } from '../src/node/node-factory.js';
import { CopyMode, runMode } from '../src/storage/modes/index.js';
import { QemuImg } from '../src/storage/qemu-img.js';

const exec = promisify(execFile);
const DIR = '/var/tmp/v2v-load-bench';
const MiB = 1024 * 1024;
const VIRTUAL = 2048 * MiB;
const CHUNK = 16 * MiB;

async function dropCaches(): Promise<void> {
  await exec('sync');
  await fs.writeFile('/proc/sys/vm/drop_caches', '3').catch(() => {});
}

/** 2 GiB raw: 16 MiB of data, 16 MiB hole, ... (1 GiB allocated). */
async function makeSource(file: string): Promise<number> {
  const fh = await fs.open(file, 'w');
  const block = randomBytes(CHUNK);
  let data = 0;
  try {
    for (let off = 0; off < VIRTUAL; off += 2 * CHUNK) {
      block.writeUInt32LE(off / CHUNK, 0); // no two chunks alike
      await fh.write(block, 0, CHUNK, off);
      data += CHUNK;
    }
    await fh.truncate(VIRTUAL);
  } finally {
    await fh.close();
  }
  return data;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  await dropCaches();
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const PAIRS = Math.max(1, Number(process.env.V2V_BENCH_PAIRS ?? 5) || 5);

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

export async function run(): Promise<void> {
  await fs.mkdir(DIR, { recursive: true });
  const work = await fs.mkdtemp(path.join(DIR, 'copy-'));
  const nodes = new NodeFactory();
  try {
    const src = path.join(work, 'src.raw');
    const bytes = await makeSource(src);
    const node = await nodes.get({});
    const q = new QemuImg(node, [work]);
    const runs: { pair: number; ours_s: number; cp_s: number; ratio: number }[] = [];
    const ratios: number[] = [];
    for (let i = 1; i <= PAIRS; i++) {
      const out = path.join(work, 'out.qcow2');
      const cpOut = path.join(work, 'cp.raw');
      const ours = await timed(() =>
        runMode(new CopyMode(), q, {
          source: { path: src, format: 'raw' },
          target: { path: out, format: 'qcow2' },
        }),
      );
      await fs.rm(out, { force: true });
      const cp = await timed(() => exec('cp', ['--sparse=always', src, cpOut]));
      await fs.rm(cpOut, { force: true });
      // ratio of throughputs = cp's seconds / ours
      ratios.push(cp / ours);
      runs.push({ pair: i, ours_s: r2(ours), cp_s: r2(cp), ratio: r2(cp / ours) });
      process.stderr.write(
        `copy ${i}/${PAIRS}: ${bytes / MiB} MiB allocated of ${VIRTUAL / MiB} MiB; ` +
          `ours ${ours.toFixed(2)} s (${(bytes / MiB / ours).toFixed(0)} MiB/s), ` +
          `cp --sparse=always ${cp.toFixed(2)} s (${(bytes / MiB / cp).toFixed(0)} MiB/s), ` +
          `ratio ${(cp / ours).toFixed(2)}\n`,
      );
    }
    const oursMedian = median(runs.map((r) => r.ours_s));
    const cpMedian = median(runs.map((r) => r.cp_s));
    process.stderr.write(
      `copy: medians of ${PAIRS} alternating pairs: ours ${oursMedian.toFixed(2)} s, ` +
        `cp ${cpMedian.toFixed(2)} s, ratio ${median(ratios).toFixed(2)}\n`,
    );
    console.log(
      JSON.stringify({
        bench: 'copy',
        ratio: r2(median(ratios)),
        ours_s: r2(oursMedian),
        cp_s: r2(cpMedian),
        runs,
      }),
    );
  } finally {
    await nodes.closeAll();
    await fs.rm(work, { recursive: true, force: true });
  }
}
