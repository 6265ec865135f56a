/**
 * A batch whose items go to different nodes, through the typed library call (`batchImport`):
 * two copies of the tiny VMware guest, really converted here, one imported on this machine's
 * libvirt and one on the test sshd's node (qemu:///system there, reached over SSH with its
 * verified host key: the disk streamed and checksummed). Both end running on their node with
 * their disk in their pool; the report names each item's node; the sources are not written.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchImport } from '../../src/batch/index.js';
import { sha256File } from '../harness/hash.js';
import { tinyVmwareCopies, tinyVmwareGuest } from '../harness/tiny-vmware-guest.js';

const exec = promisify(execFile);
const URI = 'qemu:///system';
const NAMES = ['v2vn-local', 'v2vn-ssh'] as const;

let work: string;

async function virsh(...args: string[]): Promise<string> {
  return (await exec('virsh', ['-c', URI, ...args])).stdout;
}

const sha256 = sha256File;

async function removeDomains(): Promise<void> {
  for (const n of NAMES) {
    await virsh('destroy', n).catch(() => {});
    await virsh('undefine', n).catch(() => {});
  }
}

beforeAll(async () => {
  await removeDomains();
  work = await fs.mkdtemp('/var/tmp/v2v-load-batch-nodes-');
  await fs.chmod(work, 0o755);
}, 900_000);

afterAll(async () => {
  await removeDomains();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('a batch over two nodes (typed library call)', () => {
  it('imports one item on this machine and one on the SSH node; the report names each node', async () => {
    const sshd = inject('sshd');
    const tiny = await tinyVmwareGuest();
    const src = path.join(work, 'sources');
    await fs.mkdir(src, { mode: 0o755 });
    await tinyVmwareCopies(tiny, src, [...NAMES]);
    const pools = { local: path.join(work, 'pool-local'), ssh: path.join(work, 'pool-ssh') };
    for (const p of Object.values(pools)) await fs.mkdir(p, { mode: 0o755 });
    const before = await sha256(tiny.vmdk);
    const events: string[] = [];

    const report = await batchImport(
      {
        defaults: { connect: URI, domainType: 'qemu' },
        items: [
          { source: `sources/${NAMES[0]}.vmx`, name: NAMES[0], pool: pools.local },
          {
            source: `sources/${NAMES[1]}.vmx`,
            name: NAMES[1],
            pool: pools.ssh,
            host: `ssh://root@127.0.0.1:${sshd.port}`,
            identity: sshd.identity,
            knownHosts: sshd.knownHosts,
          },
        ],
      },
      {
        baseDir: work,
        stateFile: path.join(work, 'state.json'),
        concurrency: 2,
        onEvent: (e) => {
          if (e.type === 'item') events.push(`${e.key}:${e.status}`);
        },
      },
    );

    expect(report.counts).toMatchObject({ done: 2, failed: 0, pending: 0, skipped: 0 });
    const local = report.items.find((i) => i.key === NAMES[0]);
    const remote = report.items.find((i) => i.key === NAMES[1]);
    expect(local?.node).toBe('local');
    expect(remote?.node).toContain(`127.0.0.1:${sshd.port}`);
    for (const [item, pool, name] of [
      [local, pools.local, NAMES[0]],
      [remote, pools.ssh, NAMES[1]],
    ] as const) {
      expect(item?.status, name).toBe('done');
      expect(item?.state, name).toBe('running');
      expect(item?.stageMs.convert ?? 0, name).toBeGreaterThan(0);
      expect(item?.disks.map((d) => d.path)).toEqual([path.join(pool, `${name}-sda.qcow2`)]);
      expect(item?.bytes ?? 0, name).toBeGreaterThan(0);
      expect(await virsh('domstate', name)).toContain('running');
      expect(await virsh('domblklist', name)).toContain(path.join(pool, `${name}-sda.qcow2`));
      expect((await fs.readdir(pool)).sort()).toEqual(
        [`${name}-console.log`, `${name}-sda.qcow2`, `${name}.xml`].sort(),
      );
    }
    for (const n of NAMES)
      expect(events).toEqual(expect.arrayContaining([`${n}:running`, `${n}:done`]));
    expect(await sha256(tiny.vmdk)).toBe(before);
    // The copy for the SSH node was staged on this machine and is gone.
    const staged = await fs.readdir('/var/tmp/v2v-load-import').catch(() => [] as string[]);
    expect(staged.filter((f) => f.startsWith(`${NAMES[1]}-`))).toEqual([]);
  }, 1_200_000);
});
