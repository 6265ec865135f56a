/**
 * `v2v-load inspect` through the real binary: the same source read locally and over the SSH
 * node gives the same model; bad input exits non-zero with an error naming the input.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { SourceGuest } from '../../src/metadata/model.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/v2v-load.js');
const sshd = inject('sshd');
const viaSsh = ['--host', sshd.url, '--identity', sshd.identity, '--known-hosts', sshd.knownHosts];

async function v2vLoad(...args: string[]) {
  return v2vLoadWith({}, ...args);
}

async function v2vLoadWith(env: Record<string, string>, ...args: string[]) {
  try {
    const r = await run(process.execPath, [BIN, ...args], {
      timeout: 120_000,
      env: { ...process.env, ...env },
    });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { status: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const VMX = `.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "inspect-demo"
guestOS = "debian11-64"
memsize = "2048"
numvcpus = "2"
cpuid.coresPerSocket = "2"
firmware = "efi"
uuid.bios = "56 4d 9f 1b 2c 3d 4e 5f-60 71 82 93 a4 b5 c6 d7"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "inspect-demo.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "00:50:56:AA:BB:CC"
`;

describe('v2v-load inspect', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-inspect-it-'));
    await fs.writeFile(path.join(dir, 'inspect-demo.vmx'), VMX);
    await run('qemu-img', [
      'create',
      '-q',
      '-f',
      'vmdk',
      path.join(dir, 'inspect-demo.vmdk'),
      '64M',
    ]);
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('reads a .vmx into the same model locally and over SSH', async () => {
    const vmx = path.join(dir, 'inspect-demo.vmx');
    const local = await v2vLoad('inspect', vmx, '--json');
    expect(local.status, local.stderr).toBe(0);
    const guest = JSON.parse(local.stdout) as SourceGuest;
    expect(guest).toMatchObject({
      name: 'inspect-demo',
      hypervisor: 'vmware',
      firmware: 'uefi',
      memoryBytes: 2 * 1024 ** 3,
      vcpus: 2,
      uuid: '564d9f1b-2c3d-4e5f-6071-8293a4b5c6d7',
      disks: [
        {
          path: path.join(dir, 'inspect-demo.vmdk'),
          format: 'vmdk',
          bus: 'scsi',
          controller: 'pvscsi',
        },
      ],
      nics: [{ mac: '00:50:56:aa:bb:cc', model: 'vmxnet3', network: 'VM Network' }],
    });
    const remote = await v2vLoad('inspect', vmx, '--json', ...viaSsh);
    expect(remote.status, remote.stderr).toBe(0);
    expect(JSON.parse(remote.stdout)).toEqual(guest);

    const text = await v2vLoad('inspect', vmx);
    expect(text.stdout).toMatch(/^ {8}source: vmx /);
    expect(text.stdout).toContain('hypervisor: vmware');
  });

  it('reads bare disks with -i disk', async () => {
    const r = await v2vLoad(
      'inspect',
      path.join(dir, 'inspect-demo.vmdk'),
      '--name',
      'bare',
      '--memory',
      '512M',
      '--json',
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      name: 'bare',
      memoryBytes: 512 * 1024 ** 2,
      hypervisor: 'unknown',
    });
  });

  it('refuses bad input with an error naming it, and a non-zero exit', async () => {
    const missing = path.join(dir, 'nope.vmx');
    const r = await v2vLoad('inspect', missing);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(missing);

    const usage = await v2vLoad('inspect', '-i', 'vhd', missing);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/Invalid values/);

    const guess = await v2vLoad('inspect', path.join(dir, 'notes.txt'));
    expect(guess.status).toBe(2);
    expect(guess.stderr).toMatch(/cannot tell what kind of source/);

    const dom = await v2vLoad('inspect', '-i', 'libvirt', 'v2vtest-no-such-domain', '--json');
    expect(dom.status).toBe(1);
    expect(dom.stderr).toContain('v2vtest-no-such-domain');
    // nothing left behind in the private temp dirs
    const leftovers = (await fs.readdir(os.tmpdir())).filter(
      (n) => n.startsWith('v2v-load-inspect-') && !dir.endsWith(n),
    );
    expect(leftovers).toEqual([]);
  });
});

/** An OVF for one streamOptimized disk of `capacity` bytes (and, optionally, an ISO). */
function applianceOvf(disk: string, size: number, capacity: number, iso?: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:href="${disk}" ovf:id="file1" ovf:size="${size}"/>${iso ? `\n    <File ovf:href="${iso}" ovf:id="file2"/>` : ''}
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="${capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="big-appliance">
    <Info>A virtual machine</Info>
    <Name>big-appliance</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>1 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>512MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>${iso ? `\n      <Item><rasd:AddressOnParent>1</rasd:AddressOnParent><rasd:ElementName>CD/DVD drive 1</rasd:ElementName><rasd:HostResource>ovf:/file/file2</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>15</rasd:ResourceType></Item>` : ''}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

/** Bytes under `dir`, recursively (0 when it is gone). */
async function bytesUnder(dir: string): Promise<number> {
  const names = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  let total = 0;
  for (const n of names) {
    const st = await fs.lstat(path.join(dir, n)).catch(() => undefined);
    if (st?.isFile()) total += st.size;
  }
  return total;
}

describe('v2v-load inspect of a compressed OVA: --tmp-dir', () => {
  let dir: string;
  let ova: string;
  const DISK = 'big-appliance-disk1.vmdk';

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-inspect-ova-it-'));
    const stage = path.join(dir, 'stage');
    await fs.mkdir(stage);
    // A 1 GiB disk holding 32 MiB of random data: its streamOptimized VMDK is ~32 MiB.
    const raw = path.join(dir, 'disk.raw');
    await run('qemu-img', ['create', '-q', '-f', 'raw', raw, '1G']);
    const fh = await fs.open(raw, 'r+');
    try {
      for (let i = 0; i < 32; i++) await fh.write(randomBytes(1024 * 1024));
    } finally {
      await fh.close();
    }
    const vmdk = path.join(stage, DISK);
    await run('qemu-img', [
      'convert',
      '-q',
      '-f',
      'raw',
      '-O',
      'vmdk',
      '-o',
      'subformat=streamOptimized',
      raw,
      vmdk,
    ]);
    await fs.rm(raw);
    const size = (await fs.stat(vmdk)).size;
    const ovf = applianceOvf(DISK, size, 1024 ** 3);
    await fs.writeFile(path.join(stage, 'big-appliance.ovf'), ovf);
    const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
    await fs.writeFile(
      path.join(stage, 'big-appliance.mf'),
      `SHA256(big-appliance.ovf)= ${sha(ovf)}\nSHA256(${DISK})= ${sha(await fs.readFile(vmdk))}\n`,
    );
    ova = path.join(dir, 'big-appliance.ova');
    await run('tar', [
      '--format=ustar',
      '-czf',
      ova,
      '-C',
      stage,
      'big-appliance.ovf',
      'big-appliance.mf',
      DISK,
    ]);
    await fs.rm(stage, { recursive: true });
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('writes nothing: no disk member lands in --tmp-dir or os.tmpdir()', async () => {
    const tmp = path.join(dir, 'tmp-dir');
    const sysTmp = path.join(dir, 'sys-tmp');
    await fs.mkdir(tmp);
    await fs.mkdir(sysTmp);
    const created: string[] = [];
    const watchers = [tmp, sysTmp].map((d) =>
      fsSync.watch(d, { recursive: true }, (_e, name) => {
        if (name) created.push(path.join(d, name.toString()));
      }),
    );
    let max = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        max = Math.max(max, (await bytesUnder(tmp)) + (await bytesUnder(sysTmp)));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let r: Awaited<ReturnType<typeof v2vLoad>>;
    try {
      r = await v2vLoadWith({ TMPDIR: sysTmp }, 'inspect', ova, '--tmp-dir', tmp, '--json');
    } finally {
      polling = false;
      await poller;
      for (const w of watchers) w.close();
    }
    expect(r.status, r.stderr).toBe(0);
    const guest = JSON.parse(r.stdout) as SourceGuest;
    expect(guest.disks).toEqual([
      expect.objectContaining({
        path: ova,
        capacityBytes: 1024 ** 3,
        inArchive: { archive: ova, member: DISK, size: expect.any(Number) },
      }),
    ]);
    expect(guest.disks[0]?.inArchive?.size).toBeGreaterThan(32 * 1024 ** 2);
    // Nothing was written: not a byte seen, no member file ever created, nothing left.
    expect(max).toBe(0);
    expect(created.filter((p) => p.includes(DISK))).toEqual([]);
    expect(created.filter((p) => p.startsWith(tmp))).toEqual([]);
    expect(await fs.readdir(tmp)).toEqual([]);
    expect(await fs.readdir(sysTmp)).toEqual([]);
  });

  it('a --tmp-dir without room for a member that must be extracted: both numbers, exit 1', async () => {
    const tmp = path.join(dir, 'small-tmp-dir');
    await fs.mkdir(tmp);
    const st = await fs.statfs(tmp);
    const size = st.bavail * st.bsize + 2 ** 40;
    // The OVF (first) references an ISO whose tar header claims more than the free space.
    const ovf = applianceOvf(DISK, 1024, 1024 ** 3, 'big.iso');
    const ovfFile = path.join(dir, 'iso.ovf');
    await fs.writeFile(ovfFile, ovf);
    const archive = path.join(dir, 'huge-iso.ova');
    const script = [
      'import gzip, sys, tarfile',
      'ovf = open(sys.argv[2], "rb").read()',
      'a = tarfile.TarInfo("big-appliance.ovf"); a.size = len(ovf)',
      'b = tarfile.TarInfo("big.iso"); b.size = int(sys.argv[3])',
      'data = a.tobuf(tarfile.GNU_FORMAT) + ovf + b"\\0" * (-len(ovf) % 512) + b.tobuf(tarfile.GNU_FORMAT) + b"\\0" * 4096',
      'open(sys.argv[1], "wb").write(gzip.compress(data))',
    ].join('\n');
    await run('python3', ['-c', script, archive, ovfFile, String(size)]);
    const r = await v2vLoad('inspect', archive, '--tmp-dir', tmp);
    expect(r.status).toBe(1);
    const line = new RegExp(
      `^v2v-load: error: ${tmp.replace(/[.]/g, '\\.')}: not enough free space to extract "big\\.iso" from ${archive.replace(/[.]/g, '\\.')}: ${size} bytes needed, ([0-9]+) bytes free$`,
      'm',
    ).exec(r.stderr);
    expect(line, r.stderr).not.toBeNull();
    expect(Number(line?.[1])).toBeLessThan(size);
    expect(r.stderr).toContain(
      'v2v-load: hint: free space there, or give --tmp-dir DIR on a file system with room',
    );
    expect(await fs.readdir(tmp)).toEqual([]);
  });
});
