/**
 * A VMware image in the repository (the tiny VMware guest: .vmx + monolithicSparse .vmdk) is
 * converted by the v2v pipeline on its first load; the converted master (+ its domain XML
 * beside it) loads, boots to its login prompt, and is READY.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_VMW_LOGIN, tinyVmwareGuest } from '../harness/tiny-vmware-guest.js';
import { vcl } from './provision-suite.js';

const exec = promisify(execFile);
const URI = 'qemu:///system';
const PREFIX = 'v2vl11c';
const IMAGE = `${PREFIX}vmwarelinux-TinyVmware17-v1`;

describe('load of a VMware image in the repository', () => {
  let base: string;
  const doc = () => ({
    reservation: { id: 1, requestId: 1 },
    computer: { id: 88, shortName: `${PREFIX}-88` },
    image: {
      id: 17,
      name: IMAGE,
      prettyName: 'Tiny VMware',
      revision: 1,
      minRamMiB: 256,
      minCpus: 1,
    },
    vmhost: {
      node: 'local',
      datastorePath: path.join(base, 'datastore'),
      vmPath: path.join(base, 'datastore'),
      repositoryPath: path.join(base, 'repository'),
      domainType: 'qemu',
    },
    postLoad: { pattern: TINY_VMW_LOGIN, timeoutSeconds: 240 },
  });

  beforeAll(async () => {
    const guest = await tinyVmwareGuest();
    base = await fs.mkdtemp(`/var/tmp/${PREFIX}-`);
    await fs.chmod(base, 0o755);
    const dir = path.join(base, 'repository', IMAGE);
    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    await fs.mkdir(path.join(base, 'datastore'), { mode: 0o755 });
    await fs.copyFile(guest.vmdk, path.join(dir, `${IMAGE}.vmdk`));
    const vmx = (await fs.readFile(guest.vmx, 'utf8')).replace(
      `fileName = "${path.basename(guest.vmdk)}"`,
      `fileName = "${IMAGE}.vmdk"`,
    );
    expect(vmx).toContain(`"${IMAGE}.vmdk"`);
    await fs.writeFile(path.join(dir, `${IMAGE}.vmx`), vmx);
  });

  afterAll(async () => {
    const names = (await exec('virsh', ['-c', URI, 'list', '--all', '--name'])).stdout.split('\n');
    for (const n of names.filter((x) => x.startsWith(`${PREFIX}-`))) {
      await exec('virsh', ['-c', URI, 'destroy', n]).catch(() => {});
      await exec('virsh', ['-c', URI, 'undefine', n]).catch(() => {});
    }
    if (base) await fs.rm(base, { recursive: true, force: true });
  });

  it('converts it into the master on the way, loads it, and it boots to its login prompt', async () => {
    const r = await vcl(base, 'load', doc());
    expect(r.json.error).toBeNull();
    expect(r.json.result).toMatchObject({ masterCopied: true, driver: 'QEMU-TCG' });
    const store = await fs.readdir(path.join(base, 'datastore'));
    expect(store).toContain(`${IMAGE}.qcow2`);
    expect(store).toContain(`${IMAGE}.xml`);
    expect(store.filter((f) => f.includes('.convert'))).toEqual([]);
    // the converted guest's recorded hardware is virtio
    const xml = await exec('virsh', ['-c', URI, 'dumpxml', r.json.result.domain]);
    expect(xml.stdout).toContain("bus='virtio'");
    expect((await vcl(base, 'node_status', doc())).json.result.status).toBe('READY');
    expect((await vcl(base, 'post_maintenance_action', doc())).json.error).toBeNull();
  });
});
