/**
 * `npm run bench -- convert-vs-virt-v2v`: the realistic VMware Debian fixture converted by
 * `v2v-load convert` and by Debian's `virt-v2v -i vmx ... -o local -of qcow2`, one after the
 * other on this machine, both results then booted on virtio hardware (TCG) to the fixture's
 * markers. Ends with {"bench":"convert-vs-virt-v2v","ours_s","virt_v2v_s","ratio",
 * "ours_boots","virt_v2v_boots", "ours_stages"}.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { bootDisk, STUCK_PATTERNS } from '../test/harness/boot.js';
import { debianGuest } from '../test/harness/debian-guest.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const ENV = {
  ...process.env,
  LIBGUESTFS_BACKEND: 'direct',
  LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg',
};

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, Math.round((performance.now() - t0) / 100) / 10];
}

export async function run(): Promise<void> {
  const g = await debianGuest('base');
  const work = await fs.mkdtemp('/var/tmp/v2v-load-bench-convert-');
  await fs.chmod(work, 0o755);
  try {
    const ours = path.join(work, 'ours');
    const theirs = path.join(work, 'virt-v2v');
    await fs.mkdir(ours);
    await fs.mkdir(theirs);
    await exec('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT });

    const [oursOut, oursS] = await timed(() =>
      exec(
        'node',
        [
          path.join(ROOT, 'bin/v2v-load.js'),
          'convert',
          g.vmx as string,
          '-o',
          ours,
          '--domain-type',
          'qemu',
          '--json',
        ],
        { env: ENV, maxBuffer: 64 << 20 },
      ),
    );
    const result = JSON.parse(
      oursOut.stdout
        .trim()
        .split('\n')
        .filter((l) => l.includes('"event":"result"'))
        .at(-1) as string,
    ) as { disks: { path: string }[]; stages: Record<string, number> };
    process.stderr.write(
      `v2v-load convert: ${oursS} s; stages (ms): ${JSON.stringify(result.stages)}\n`,
    );

    const [, theirsS] = await timed(() =>
      exec(
        'virt-v2v',
        ['-i', 'vmx', g.vmx as string, '-o', 'local', '-os', theirs, '-of', 'qcow2'],
        {
          env: ENV,
          maxBuffer: 64 << 20,
        },
      ),
    );
    process.stderr.write(`virt-v2v: ${theirsS} s\n`);
    const theirDisk = (await fs.readdir(theirs)).find((f) => f.endsWith('-sda'));

    const boot = (image: string) =>
      bootDisk({
        image,
        format: 'qcow2',
        hardware: 'virtio',
        mac: g.mac,
        stopOn: STUCK_PATTERNS,
        timeoutMs: 300_000,
      });
    const oursBoot = await boot(result.disks[0]?.path as string);
    const theirsBoot = theirDisk ? await boot(path.join(theirs, theirDisk)) : undefined;
    process.stderr.write(
      `ours boots: ${oursBoot.reached} (${oursBoot.seconds} s); virt-v2v's boots: ${theirsBoot?.reached ?? false}${
        theirsBoot && !theirsBoot.reached
          ? ` (stuck: ${theirsBoot.stoppedOn ?? theirsBoot.exited ?? 'timeout'})`
          : ''
      }\n`,
    );
    process.stdout.write(
      `${JSON.stringify({
        bench: 'convert-vs-virt-v2v',
        ours_s: oursS,
        virt_v2v_s: theirsS,
        ratio: Math.round((oursS / theirsS) * 100) / 100,
        ours_boots: oursBoot.reached,
        virt_v2v_boots: theirsBoot?.reached ?? false,
        ours_stages_ms: result.stages,
      })}\n`,
    );
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
