/**
 * copy: the storage layer's copy mode (qemu-img convert of a 2 GiB raw image with ~1 GiB
 * allocated into qcow2, through measure, the free-space check, a temporary name and the
 * rename) versus `cp --sparse=always` of the same raw file, one run each, page cache dropped
 * before each when possible. Throughput = allocated bytes / seconds;
 * {"bench":"copy","ratio":..} with ratio = ours / cp's.
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

export async function run(): Promise<void> {
  await fs.mkdir(DIR, { recursive: true });
  const work = await fs.mkdtemp(path.join(DIR, 'copy-'));
  const nodes = new NodeFactory();
  try {
    const src = path.join(work, 'src.raw');
    const bytes = await makeSource(src);
    const node = await nodes.get({});
    const q = new QemuImg(node, [work]);
    const ours = await timed(() =>
      runMode(new CopyMode(), q, {
        source: { path: src, format: 'raw' },
        target: { path: path.join(work, 'out.qcow2'), format: 'qcow2' },
      }),
    );
    const cp = await timed(() => exec('cp', ['--sparse=always', src, path.join(work, 'cp.raw')]));
    const oursMBs = bytes / MiB / ours;
    const cpMBs = bytes / MiB / cp;
    process.stderr.write(
      `copy: ${bytes / MiB} MiB allocated of ${VIRTUAL / MiB} MiB; ours ${ours.toFixed(2)} s ` +
        `(${oursMBs.toFixed(0)} MiB/s), cp --sparse=always ${cp.toFixed(2)} s (${cpMBs.toFixed(0)} MiB/s)\n`,
    );
    console.log(
      JSON.stringify({
        bench: 'copy',
        ratio: Math.round((oursMBs / cpMBs) * 100) / 100,
        ours_s: Math.round(ours * 100) / 100,
        cp_s: Math.round(cp * 100) / 100,
      }),
    );
  } finally {
    await nodes.closeAll();
    await fs.rm(work, { recursive: true, force: true });
  }
}
