/**
 * A Windows master fetched from the repository gets the registry changes on its fresh copy
 * (VMware's services off, IDE's CriticalDeviceDatabase: no virtio-win on the VM host) before
 * it becomes the master: the synthetic Windows Server 2003 disk (test/harness/windows-guest.ts)
 * as a qcow2 image in a test repository, loaded through `v2v-load vcl load`. Its registry is
 * read back (ntfscat, no appliance; hivexregedit --export) and compared key by key with the
 * golden change set of `v2v-load convert` on the same guest; the repository image is
 * byte-identical; a reload does not convert again; a captured Windows image carries a
 * conversion record and its fetch from the repository is not converted again. The synthetic
 * disk does not boot: every load is made with postLoad.wait=false.
 *
 * With vmhost.virtioWinPath (the fake virtio-win ISO of the fixtures) a Windows 7 image gets the
 * virtio drivers on its way to the master: the driver files in the guest, viostor and vioscsi as
 * boot-start services, the CriticalDeviceDatabase (the golden change set of `v2v-load convert`
 * on the same guest), DevicePath; its conversion record and the loaded domain say virtio for
 * the disk and the NIC. Without it (Server 2003 above): IDE and e1000.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReservationInput } from '../../src/provisioning/reservation.js';
import { exportHive, registryChanges } from '../harness/hive-export.js';
import { type WindowsFixtures, windowsGuests } from '../harness/windows-guest.js';
import { guestSpecs } from '../harness/windows-mem-guest.js';
import { vcl } from './provision-suite.js';

const exec = promisify(execFile);
const URI = 'qemu:///system';
const PREFIX = 'v2vl11w';
const IMAGE = `${PREFIX}vmwarewin-Win2003Server21-v1`;
const CAPTURED = `${PREFIX}vmwarewin-Win2003Captured22-v1`;
const VIRTIO = `${PREFIX}vmwarewin-Win7Virtio23-v1`;
/** A network of the test's own: each load's domain gets one NIC (its model is asserted). */
const NET = `${PREFIX}-net`;
const GOLDEN = path.join(import.meta.dirname, '../golden/windows');

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

async function virsh(...args: string[]): Promise<string> {
  return (await exec('virsh', ['-c', URI, ...args])).stdout;
}

/**
 * Files read from the NTFS file system of a disk's first partition without an appliance (the
 * test's own reader, independent of libguestfs): the disk as raw, its first MBR partition cut
 * out with qemu-img, then ntfscat (ntfs-3g). `files`: local name → guest path. @returns local paths
 */
async function readNtfsFiles<K extends string>(
  disk: string,
  dir: string,
  files: Record<K, string>,
): Promise<Record<K, string>> {
  const raw = path.join(dir, 'disk.raw');
  const part = path.join(dir, 'part.raw');
  await exec('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', disk, raw]);
  // the first entry of the MBR's partition table: start sector and sectors (LE at +8, +12)
  const mbr = Buffer.alloc(512);
  const fh = await fs.open(raw);
  await fh.read(mbr, 0, 512, 0);
  await fh.close();
  const start = mbr.readUInt32LE(446 + 8) * 512;
  const size = mbr.readUInt32LE(446 + 12) * 512;
  expect(mbr.readUInt16LE(510)).toBe(0xaa55);
  const opts = `driver=raw,offset=${start},size=${size},file.driver=file,file.filename=${raw}`;
  await exec('qemu-img', ['convert', '--image-opts', opts, '-O', 'raw', part]);
  const out = {} as Record<K, string>;
  for (const [name, guest] of Object.entries(files) as [K, string][]) {
    const { stdout } = await promisify(execFile)('ntfscat', [part, guest], {
      encoding: 'buffer',
      maxBuffer: 1 << 26,
    });
    out[name] = path.join(dir, name);
    await fs.writeFile(out[name], stdout);
  }
  await fs.rm(raw);
  await fs.rm(part);
  return out;
}

describe('load of a Windows image from the repository', () => {
  let fx: WindowsFixtures;
  let base: string;
  let repo: string;
  let store: string;
  let repoImage: string;
  let repoSha: string;

  const doc = (computer: number, image = IMAGE, id = 21): ReservationInput => ({
    reservation: { id: 1, requestId: 1 },
    computer: { id: computer, shortName: `${PREFIX}-${computer}` },
    image: {
      id,
      name: image,
      prettyName: 'Windows Server 2003',
      revision: 1,
      osType: 'windows',
      minRamMiB: 128,
      minCpus: 1,
    },
    vmhost: {
      node: 'local',
      datastorePath: store,
      vmPath: path.join(base, 'vms'),
      repositoryPath: repo,
      domainType: 'qemu',
      virtualSwitch0: NET,
    },
    postLoad: { wait: false },
  });

  beforeAll(async () => {
    fx = await windowsGuests();
    base = await fs.mkdtemp(`/var/tmp/${PREFIX}-`);
    await fs.chmod(base, 0o755);
    repo = path.join(base, 'repository');
    store = path.join(base, 'datastore');
    for (const d of [
      path.join(repo, IMAGE),
      path.join(repo, VIRTIO),
      store,
      path.join(base, 'vms'),
    ]) {
      await fs.mkdir(d, { recursive: true, mode: 0o755 });
    }
    repoImage = path.join(repo, IMAGE, `${IMAGE}.qcow2`);
    const toQcow2 = (vmdk: string, out: string) =>
      exec('qemu-img', ['convert', '-f', 'vmdk', '-O', 'qcow2', vmdk, out]);
    await toQcow2(fx.guests.win2003.vmdk, repoImage);
    await toQcow2(fx.guests.win7.vmdk, path.join(repo, VIRTIO, `${VIRTIO}.qcow2`));
    repoSha = await sha256(repoImage);
    await exec('virsh', ['-c', URI, 'net-destroy', NET]).catch(() => {});
    const netXml = path.join(base, 'net.xml');
    await fs.writeFile(
      netXml,
      `<network><name>${NET}</name><bridge name='${PREFIX}b0' stp='off'/></network>`,
    );
    await virsh('net-create', netXml);
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
    await exec('virsh', ['-c', URI, 'net-destroy', NET]).catch(() => {});
    if (base) await fs.rm(base, { recursive: true, force: true });
  });

  it('converts the fresh copy before it becomes the master; the domain gets IDE, e1000, localtime', async () => {
    const r = await vcl(base, 'load', doc(1));
    expect(r.json.error).toBeNull();
    expect(r.json.result).toMatchObject({
      masterCopied: true,
      masterConverted: true,
      master: path.join(store, `${IMAGE}.qcow2`),
      postLoad: { waited: false },
    });
    // the master, its conversion record, nothing else (no temporary copy, no work directory)
    expect((await fs.readdir(store)).sort()).toEqual([
      `${IMAGE}.conversion.json`,
      `${IMAGE}.qcow2`,
    ]);
    const record = JSON.parse(
      await fs.readFile(path.join(store, `${IMAGE}.conversion.json`), 'utf8'),
    );
    expect(record).toMatchObject({
      image: IMAGE,
      how: 'windows-registry',
      modules: { hvsource: 'vmware-windows' },
      devices: { diskBus: 'ide', nicModel: 'e1000', machine: 'pc' },
    });
    expect(record.notes[0]).toMatch(/^VMware services in ControlSet001: disabled \(Start 4\) /);
    expect(record.warnings.join('\n')).toMatch(/gets IDE disks/);
    const xml = await virsh('dumpxml', r.json.result.domain);
    expect(xml).toMatch(/<target dev='hda' bus='ide'\/>/);
    expect(xml).not.toContain("bus='virtio'");
    expect(xml).toContain("<model type='e1000'/>");
    expect(xml).toContain("<clock offset='localtime'");
    expect(xml).toMatch(/machine='pc-i440fx/);
    expect(await sha256(repoImage)).toBe(repoSha);
  });

  it('a reload does not convert again; the master is unchanged', async () => {
    const master = path.join(store, `${IMAGE}.qcow2`);
    const before = await sha256(master);
    const recordBefore = await fs.readFile(path.join(store, `${IMAGE}.conversion.json`), 'utf8');
    const r = await vcl(base, 'load', doc(1));
    expect(r.json.error).toBeNull();
    expect(r.json.result).toMatchObject({ masterCopied: false, masterConverted: false });
    expect(await sha256(master)).toBe(before);
    expect(await fs.readFile(path.join(store, `${IMAGE}.conversion.json`), 'utf8')).toBe(
      recordBefore,
    );
  });

  it("the master's registry: exactly the changes `v2v-load convert` makes (golden), VMware services Start=4", async () => {
    expect((await vcl(base, 'power_off', doc(1))).json.result).toBe(true);
    const s = guestSpecs().guests.win2003;
    const sys32 = `/${s.systemRoot}/${s.system32}`;
    const local = path.join(base, 'readback');
    await fs.mkdir(local);
    const hives = await readNtfsFiles(path.join(store, `${IMAGE}.qcow2`), local, {
      SYSTEM: `${sys32}/config/${s.hiveNames[0]}`,
      SOFTWARE: `${sys32}/config/${s.hiveNames[1]}`,
    });
    const system = await exportHive(hives.SYSTEM, 'SYSTEM');
    const services = 'HKLM\\SYSTEM\\ControlSet001\\Services';
    for (const svc of ['VMTools', 'vmci', 'vmmemctl', 'vmhgfs', 'vmvss']) {
      expect(system.get(`${services}\\${svc}`)?.get('"Start"'), svc).toBe('dword:00000004');
    }
    const cdd = 'HKLM\\SYSTEM\\ControlSet001\\Control\\CriticalDeviceDatabase';
    expect(system.get(`${cdd}\\pci#ven_8086&dev_7010`)?.get('"Service"')).toBe('sz:"intelide"');
    expect(system.get(`${cdd}\\primary_ide_channel`)?.get('"Service"')).toBe('sz:"atapi"');
    for (const hive of ['SYSTEM', 'SOFTWARE'] as const) {
      const before = await exportHive(
        fx.guests.win2003[hive === 'SYSTEM' ? 'system' : 'software'],
        hive,
      );
      const after = hive === 'SYSTEM' ? system : await exportHive(hives.SOFTWARE, hive);
      expect(registryChanges(before, after)).toBe(
        await fs.readFile(path.join(GOLDEN, `registry-win2003-${hive}.changes`), 'utf8'),
      );
    }
  });

  it('a captured Windows image carries a conversion record: its fetch is not converted again', async () => {
    const cap = doc(1);
    cap.image = { ...cap.image, id: 22, name: CAPTURED };
    cap.args = { shutdownTimeoutSeconds: 5 };
    const c = await vcl(base, 'capture', cap);
    expect(c.json.error).toBeNull();
    expect(c.json.result).toMatchObject({ shutdown: 'was-off', masters: [c.json.result.master] });
    const inRepo = await fs.readdir(path.join(repo, CAPTURED));
    expect(inRepo.sort()).toEqual(
      [`${CAPTURED}.conversion.json`, `${CAPTURED}.qcow2`, `${CAPTURED}.xml`].sort(),
    );
    // fetched from the repository this time: the datastore copy goes
    for (const f of await fs.readdir(store)) {
      if (f.startsWith(CAPTURED)) await fs.rm(path.join(store, f));
    }
    const r = await vcl(base, 'load', doc(2, CAPTURED, 22));
    expect(r.json.error).toBeNull();
    expect(r.json.result).toMatchObject({ masterCopied: true, masterConverted: false });
    const record = JSON.parse(
      await fs.readFile(path.join(store, `${CAPTURED}.conversion.json`), 'utf8'),
    );
    expect(record).toMatchObject({ image: CAPTURED, how: 'captured' });
    // the captured domain XML keeps the devices the conversion chose
    const xml = await virsh('dumpxml', r.json.result.domain);
    expect(xml).toContain("bus='ide'");
    for (const d of [doc(1), doc(2, CAPTURED, 22)]) {
      expect((await vcl(base, 'post_maintenance_action', d)).json.error).toBeNull();
    }
  });

  it('with vmhost.virtioWinPath the master gets the virtio drivers; the domain gets a virtio disk and NIC', async () => {
    const d = doc(3, VIRTIO, 23);
    d.image.prettyName = 'Windows 7';
    d.vmhost.virtioWinPath = fx.virtioWinIso;
    const repoVirtio = path.join(repo, VIRTIO, `${VIRTIO}.qcow2`);
    const repoVirtioSha = await sha256(repoVirtio);
    const r = await vcl(base, 'load', d);
    expect(r.json.error).toBeNull();
    const master = path.join(store, `${VIRTIO}.qcow2`);
    expect(r.json.result).toMatchObject({ masterCopied: true, masterConverted: true, master });
    expect((await fs.readdir(store)).filter((f) => f.includes(VIRTIO)).sort()).toEqual([
      `${VIRTIO}.conversion.json`,
      `${VIRTIO}.qcow2`,
    ]);
    const record = JSON.parse(
      await fs.readFile(path.join(store, `${VIRTIO}.conversion.json`), 'utf8'),
    );
    expect(record).toMatchObject({
      image: VIRTIO,
      how: 'windows-registry',
      modules: { hvsource: 'vmware-windows' },
      devices: { diskBus: 'virtio', nicModel: 'virtio', machine: 'q35' },
      warnings: [],
    });
    const xml = await virsh('dumpxml', r.json.result.domain);
    expect(xml).toMatch(/<target dev='vda' bus='virtio'\/>/);
    expect(xml).not.toContain("bus='ide'");
    expect(xml).toContain("<model type='virtio'/>");
    expect(xml).toMatch(/machine='pc-q35/);
    expect(await sha256(repoVirtio)).toBe(repoVirtioSha);

    // the master read back: hives and driver files (Windows 7's current control set is 002)
    expect((await vcl(base, 'power_off', d)).json.result).toBe(true);
    const s = guestSpecs().guests.win7;
    const sys32 = `/${s.systemRoot}/${s.system32}`;
    const local = path.join(base, 'readback-virtio');
    await fs.mkdir(local);
    const files = await readNtfsFiles(master, local, {
      SYSTEM: `${sys32}/config/${s.hiveNames[0]}`,
      SOFTWARE: `${sys32}/config/${s.hiveNames[1]}`,
      'viostor.sys': `${sys32}/drivers/viostor.sys`,
      'vioscsi.sys': `${sys32}/drivers/vioscsi.sys`,
      'netkvm.inf': `/${s.systemRoot}/Drivers/VirtIO/netkvm.inf`,
    });
    for (const f of ['viostor.sys', 'vioscsi.sys', 'netkvm.inf'] as const) {
      expect(await fs.readFile(files[f], 'utf8')).toBe(`placeholder ${f} for w7/amd64\n`);
    }
    const system = await exportHive(files.SYSTEM, 'SYSTEM');
    const cs = 'HKLM\\SYSTEM\\ControlSet002';
    for (const svc of ['viostor', 'vioscsi']) {
      const key = system.get(`${cs}\\Services\\${svc}`);
      expect(key?.get('"Start"'), svc).toBe('dword:00000000');
      expect(key?.get('"ImagePath"'), svc).toBe(`expand_sz:"system32\\\\drivers\\\\${svc}.sys"`);
    }
    const cdd = `${cs}\\Control\\CriticalDeviceDatabase`;
    expect(
      system.get(`${cdd}\\pci#ven_1af4&dev_1001&subsys_00021af4&rev_00`)?.get('"Service"'),
    ).toBe('sz:"viostor"');
    expect(system.get(`${cs}\\Services\\VMTools`)?.get('"Start"')).toBe('dword:00000004');
    // SYSTEM: exactly what `v2v-load convert --virtio-win` makes of the same guest (golden)
    expect(registryChanges(await exportHive(fx.guests.win7.system, 'SYSTEM'), system)).toBe(
      await fs.readFile(path.join(GOLDEN, 'registry-win7-SYSTEM.changes'), 'utf8'),
    );
    const software = await exportHive(files.SOFTWARE, 'SOFTWARE');
    expect(
      software.get('HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion')?.get('"DevicePath"'),
    ).toBe('expand_sz:"%SystemRoot%\\\\inf;%SystemRoot%\\\\Drivers\\\\VirtIO"');
    expect((await vcl(base, 'post_maintenance_action', d)).json.error).toBeNull();
  });
});
