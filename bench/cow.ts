/**
 * cow: the storage layer's COW mode (a qcow2 overlay with -b/-F over a master, checked first,
 * temporary name, rename) over a 1 GiB and a 1 TiB virtual master on the local node; median
 * of 5 runs each. {"bench":"cow","ms_1g":..,"ms_1t":..}
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NodeFactory } from '../src/node/node-factory.js';
import { CowMode, runMode } from '../src/storage/modes/index.js';
import { QemuImg } from '../src/storage/qemu-img.js';

const exec = promisify(execFile);
const DIR = '/var/tmp/v2v-load-bench';
const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

export async function run(): Promise<void> {
  await fs.mkdir(DIR, { recursive: true });
  const work = await fs.mkdtemp(path.join(DIR, 'cow-'));
  const nodes = new NodeFactory();
  try {
    const node = await nodes.get({});
    const q = new QemuImg(node, [work]);
    const result: Record<string, number> = {};
    for (const [key, size] of [
      ['ms_1g', '1G'],
      ['ms_1t', '1T'],
    ] as const) {
      const master = path.join(work, `master-${size}.qcow2`);
      await exec('qemu-img', ['create', '-q', '-f', 'qcow2', master, size]);
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        await runMode(new CowMode(), q, {
          source: { path: master, format: 'qcow2' },
          target: { path: path.join(work, `vm${i}_${size}-v1.qcow2`), format: 'qcow2' },
        });
        times.push(performance.now() - t0);
      }
      result[key] = Math.round(median(times) * 10) / 10;
      process.stderr.write(`cow over ${size}: ${times.map((t) => t.toFixed(1)).join(', ')} ms\n`);
    }
    console.log(JSON.stringify({ bench: 'cow', ...result }));
  } finally {
    await nodes.closeAll();
    await fs.rm(work, { recursive: true, force: true });
  }
}
