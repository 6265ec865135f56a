/**
 * batch: 8 small VMware guests (copies of the tiny guest, test/harness/tiny-vmware-guest.ts)
 * imported by one batch (convert, place, define, start; no boot check) on the local libvirt,
 * at concurrency 1, then 2, on this 2-core machine. The domains and files are removed after
 * each run. {"bench":"batch","s_c1":..,"s_c2":..,"speedup":..}
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { batchImport } from '../src/batch/index.js';
import { StreamLogger } from '../src/log/logger.js';
import { tinyVmwareCopies, tinyVmwareGuest } from '../test/harness/tiny-vmware-guest.js';

const exec = promisify(execFile);
const DIR = '/var/tmp/v2v-load-bench';
const ITEMS = 8;

async function removeDomains(names: readonly string[]): Promise<void> {
  for (const n of names) {
    await exec('virsh', ['-c', 'qemu:///system', 'destroy', n]).catch(() => {});
    await exec('virsh', ['-c', 'qemu:///system', 'undefine', n]).catch(() => {});
  }
}

export async function run(): Promise<void> {
  await fs.mkdir(DIR, { recursive: true, mode: 0o755 });
  const work = await fs.mkdtemp(path.join(DIR, 'batch-'));
  await fs.chmod(work, 0o755);
  const tiny = await tinyVmwareGuest();
  const result: Record<string, number> = {};
  try {
    for (const c of [1, 2]) {
      const names = Array.from({ length: ITEMS }, (_, i) => `v2vbench-c${c}-${i + 1}`);
      const dir = path.join(work, `c${c}`);
      const pool = path.join(dir, 'pool');
      await fs.mkdir(pool, { recursive: true, mode: 0o755 });
      await fs.chmod(dir, 0o755);
      const vmxs = await tinyVmwareCopies(tiny, dir, names);
      const t0 = performance.now();
      const report = await batchImport(
        {
          defaults: { pool, domainType: 'qemu', start: true },
          items: vmxs.map((source, i) => ({ source, name: names[i] })),
        },
        {
          concurrency: c,
          stateFile: path.join(dir, 'state.json'),
          logger: new StreamLogger('warn'),
        },
      );
      const s = (performance.now() - t0) / 1000;
      await removeDomains(names);
      if (report.counts.done !== ITEMS) {
        const why = report.items
          .filter((i) => i.status !== 'done')
          .map((i) => `${i.key}: ${i.error}`);
        throw new Error(`bench batch: concurrency ${c}: not all items done:\n${why.join('\n')}`);
      }
      const conv = report.items.map((i) => (i.stageMs.convert ?? 0) / 1000);
      process.stdout.write(
        `concurrency ${c}: ${ITEMS} imports in ${s.toFixed(1)} s (convert per item ${Math.min(...conv).toFixed(1)}-${Math.max(...conv).toFixed(1)} s)\n`,
      );
      result[`s_c${c}`] = Math.round(s * 10) / 10;
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  const speedup = Math.round(((result.s_c1 ?? 0) / (result.s_c2 ?? 1)) * 100) / 100;
  process.stdout.write(`${JSON.stringify({ bench: 'batch', ...result, speedup })}\n`);
}
