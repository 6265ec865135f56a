/**
 * Images of several disks: a two-disk image in the repository (the tiny bootable disk + a
 * small data disk, and a domain XML with both) loads with a COW image over each disk; data
 * written on the second disk while the domain is shut off (qemu-io) is captured (every disk
 * flattened into the new master, `<image>-disk2.qcow2` beside it, all of it in the
 * repository) and is there after a load of the captured image, fetched from the repository.
 * No guest boots here (postLoad.wait=false).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReservationInput } from '../../src/provisioning/reservation.js';
import { buildTinyDisk } from '../harness/tiny-disk.js';
import { vcl } from './provision-suite.js';

const exec = promisify(execFile);
const URI = 'qemu:///system';
const PREFIX = 'v2vl11d';
const IMAGE = `${PREFIX}linux-TwoDisks31-v1`;
const CAPTURED = `${PREFIX}linux-TwoDisksCaptured32-v1`;
const TWO_DISKS_XML = `<domain type='qemu'><name>two-disks</name><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><target dev='vdb' bus='virtio'/></disk>
</devices></domain>
`;

async function virsh(...args: string[]): Promise<string> {
  return (await exec('virsh', ['-c', URI, ...args])).stdout;
}

/** The domain's disks: target → source. */
async function blockDevices(domain: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await virsh('domblklist', domain)).split('\n').slice(2)) {
    const [target, source] = line.trim().split(/\s+/);
    if (target && source) out[target] = source;
  }
  return out;
}

/** True when qemu-io reads the data the test wrote (64 KiB of 0x5a at 1 MiB). */
async function hasPattern(image: string): Promise<boolean> {
  return exec('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', 'read -P 0x5a 1M 64k', image]).then(
    (r) => r.stdout.includes('read 65536/65536 bytes at offset 1048576'),
    (e: { stdout?: string; stderr?: string }) => {
      if (!`${e.stdout}${e.stderr}`.includes('Pattern verification failed')) throw e;
      return false;
    },
  );
}

async function backingOf(image: string): Promise<string | undefined> {
  const info = JSON.parse((await exec('qemu-img', ['info', '-U', '--output=json', image])).stdout);
  return info['backing-filename'];
}

describe('images of several disks', () => {
  let base: string;
  let repo: string;
  let store: string;
  let vms: string;

  const doc = (computer: number, image = IMAGE, id = 31): ReservationInput => ({
    reservation: { id: 1, requestId: 1 },
    computer: { id: computer, shortName: `${PREFIX}-${computer}` },
    image: { id, name: image, prettyName: 'Two disks', revision: 1, minRamMiB: 64, minCpus: 1 },
    vmhost: {
      node: 'local',
      datastorePath: store,
      vmPath: vms,
      repositoryPath: repo,
      domainType: 'qemu',
    },
    postLoad: { wait: false },
  });

  beforeAll(async () => {
    const tiny = await buildTinyDisk();
    base = await fs.mkdtemp(`/var/tmp/${PREFIX}-`);
    await fs.chmod(base, 0o755);
    repo = path.join(base, 'repository');
    store = path.join(base, 'datastore');
    vms = path.join(base, 'vms');
    const dir = path.join(repo, IMAGE);
    for (const d of [dir, store, vms]) await fs.mkdir(d, { recursive: true, mode: 0o755 });
    await fs.copyFile(tiny, path.join(dir, `${IMAGE}.qcow2`));
    await exec('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      path.join(dir, `${IMAGE}-disk2.qcow2`),
      '16M',
    ]);
    await fs.writeFile(path.join(dir, `${IMAGE}.xml`), TWO_DISKS_XML);
  });

  afterAll(async () => {
    const names = (await virsh('list', '--all', '--name').catch(() => '')).split('\n');
    for (const n of names.filter((x) => x.startsWith(`${PREFIX}-`))) {
      await exec('virsh', ['-c', URI, 'destroy', n]).catch(() => {});
      await exec('virsh', ['-c', URI, 'undefine', n]).catch(() => {});
    }
    for (const f of await fs.readdir('/tmp/vcl').catch(() => [])) {
      if (f.startsWith(`${PREFIX}-`)) await fs.rm(path.join('/tmp/vcl', f), { force: true });
    }
    if (base) await fs.rm(base, { recursive: true, force: true });
  });

  it('does_image_exist, the sizes and the repository files count every disk', async () => {
    const dir = path.join(repo, IMAGE);
    const files = [path.join(dir, `${IMAGE}.qcow2`), path.join(dir, `${IMAGE}-disk2.qcow2`)];
    expect((await vcl(base, 'does_image_exist', doc(1))).json.result).toEqual({
      exists: true,
      where: 'repository',
      disks: 2,
      files,
    });
    expect((await vcl(base, 'find_repository_image_file_paths', doc(1))).json.result).toEqual(
      files,
    );
    let allocated = 0;
    for (const f of files) allocated += (await fs.stat(f)).blocks * 512;
    const bytes = (await vcl(base, 'get_image_size_bytes', doc(1))).json.result;
    expect(bytes).toBe(allocated);
    expect((await vcl(base, 'get_image_size', doc(1))).json.result).toBe(
      Math.ceil(allocated / 1048576),
    );
  });

  it('load: a COW image over each disk of a two-disk master fetched from the repository', async () => {
    const r = await vcl(base, 'load', doc(1));
    expect(r.json.error).toBeNull();
    const masters = [path.join(store, `${IMAGE}.qcow2`), path.join(store, `${IMAGE}-disk2.qcow2`)];
    const cows = [
      path.join(vms, `${PREFIX}-1_31-v1.qcow2`),
      path.join(vms, `${PREFIX}-1_31-v1-disk2.qcow2`),
    ];
    expect(r.json.result).toMatchObject({ masterCopied: true, masters, cows, cow: cows[0] });
    expect(await blockDevices(r.json.result.domain)).toEqual({ vda: cows[0], vdb: cows[1] });
    expect(await backingOf(cows[0] as string)).toBe(masters[0]);
    expect(await backingOf(cows[1] as string)).toBe(masters[1]);
    expect((await vcl(base, 'does_image_exist', doc(1))).json.result).toEqual({
      exists: true,
      where: 'datastore',
      disks: 2,
      files: masters,
    });
    const gen = (await vcl(base, 'generate_domain_xml', doc(1))).json.result as string;
    expect(gen).toContain(cows[1]);
  });

  it('capture flattens every disk; a load of the captured image has both disks and the data', async () => {
    expect((await vcl(base, 'power_off', doc(1))).json.result).toBe(true);
    const cow2 = path.join(vms, `${PREFIX}-1_31-v1-disk2.qcow2`);
    await exec('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 64k', cow2]);
    const cap = doc(1);
    cap.image = { ...cap.image, id: 32, name: CAPTURED };
    const c = await vcl(base, 'capture', cap);
    expect(c.json.error).toBeNull();
    const masters = [
      path.join(store, `${CAPTURED}.qcow2`),
      path.join(store, `${CAPTURED}-disk2.qcow2`),
    ];
    const dir = path.join(repo, CAPTURED);
    expect(c.json.result).toMatchObject({
      shutdown: 'was-off',
      master: masters[0],
      masters,
      xml: path.join(store, `${CAPTURED}.xml`),
      repository: {
        image: path.join(dir, `${CAPTURED}.qcow2`),
        disks: [path.join(dir, `${CAPTURED}.qcow2`), path.join(dir, `${CAPTURED}-disk2.qcow2`)],
        xml: path.join(dir, `${CAPTURED}.xml`),
      },
    });
    for (const m of masters) expect(await backingOf(m), m).toBeUndefined();
    expect((await fs.readdir(dir)).sort()).toEqual(
      [`${CAPTURED}-disk2.qcow2`, `${CAPTURED}.qcow2`, `${CAPTURED}.xml`].sort(),
    );
    // the captured image is fetched from the repository this time
    for (const f of await fs.readdir(store)) {
      if (f.startsWith(CAPTURED)) await fs.rm(path.join(store, f));
    }
    const r = await vcl(base, 'load', doc(2, CAPTURED, 32));
    expect(r.json.error).toBeNull();
    expect(r.json.result).toMatchObject({ masterCopied: true, masters });
    const cows = r.json.result.cows as string[];
    expect(cows).toHaveLength(2);
    expect(Object.values(await blockDevices(r.json.result.domain))).toEqual(cows);
    expect(await hasPattern(cows[1] as string)).toBe(true);
    // the first disk did not get it
    expect(await hasPattern(cows[0] as string)).toBe(false);
    for (const d of [doc(1), doc(2, CAPTURED, 32)]) {
      expect((await vcl(base, 'post_maintenance_action', d)).json.error).toBeNull();
    }
    expect(await fs.readdir(vms)).toEqual([]);
  });
});
