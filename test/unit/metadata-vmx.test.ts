import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataError, UsageError } from '../../src/errors.js';
import {
  parseSparseHeader,
  parseVmdkDescriptor,
  readVmdkDescriptor,
} from '../../src/formats/vmdk-descriptor.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import type { ReaderContext } from '../../src/metadata/reader.js';
import { parseVmx, unescapeVmx } from '../../src/metadata/vmx/parse-vmx.js';
import { VmxReader } from '../../src/metadata/vmx/vmx-reader.js';
import { expectGolden } from '../harness/golden.js';
import { WatchedNode } from '../harness/watched-node.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/metadata/vmx');
const silent = { debug() {}, info() {}, warn() {}, error() {} };

let root: string;
let node: WatchedNode;
let ctx: ReaderContext;

interface DescriptorSpec {
  cid: string;
  parentCid?: string;
  createType: string;
  parent?: string;
  extents: string[];
  adapter?: string;
  extra?: string[];
}

/** A text descriptor as ESXi and Workstation write them. */
function descriptor(d: DescriptorSpec): string {
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${d.cid}`,
    `parentCID=${d.parentCid ?? 'ffffffff'}`,
    ...(d.parent === undefined ? [] : [`parentFileNameHint="${d.parent}"`]),
    `createType="${d.createType}"`,
    '',
    '# Extent description',
    ...d.extents,
    '',
    '# The Disk Data Base ',
    '#DDB',
    '',
    ...(d.adapter ? [`ddb.adapterType = "${d.adapter}"`] : []),
    ...(d.extra ?? []),
    '',
  ].join('\n');
}

async function write(file: string, content: string | Buffer): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
}

/** An ESXi thick/thin disk: descriptor plus an (empty) flat extent. */
async function esxiDisk(dir: string, base: string, sectors: number, cid: string, adapter: string) {
  await write(
    path.join(dir, `${base}.vmdk`),
    descriptor({
      cid,
      createType: 'vmfs',
      extents: [`RW ${sectors} VMFS "${base}-flat.vmdk"`],
      adapter,
      extra: [
        'ddb.deletable = "true"',
        'ddb.geometry.cylinders = "5221"',
        'ddb.geometry.heads = "255"',
        'ddb.geometry.sectors = "63"',
        'ddb.thinProvisioned = "1"',
        'ddb.toolsInstallType = "4"',
        'ddb.toolsVersion = "11365"',
        'ddb.virtualHWVersion = "14"',
      ],
    }),
  );
  await write(path.join(dir, `${base}-flat.vmdk`), '');
}

function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', ['create', '-q', ...args], { stdio: 'pipe' });
}

/** Creates the disk files the corpus .vmx files name, next to their copies. */
async function createCorpusDisks(dir: string): Promise<void> {
  await esxiDisk(dir, 'centos7-web01', 33554432, '7d3e1c55', 'lsilogic');
  await esxiDisk(dir, 'win2019-sql', 125829120, 'a1b2c3d4', 'pvscsi');
  await write(
    path.join(dir, 'win2019-sql-000001.vmdk'),
    descriptor({
      cid: '5c2e19a7',
      parentCid: 'a1b2c3d4',
      createType: 'seSparse',
      parent: 'win2019-sql.vmdk',
      extents: ['RW 125829120 SESPARSE "win2019-sql-000001-sesparse.vmdk"'],
      extra: ['ddb.grain = "8"', 'ddb.longContentID = "6f0a9d3c1b2e4f5a8c7d6e5f5c2e19a7"'],
    }),
  );
  await write(path.join(dir, 'win2019-sql-000001-sesparse.vmdk'), '');
  await esxiDisk(dir, 'win2019-sql_1', 209715200, '0e44b2f9', 'pvscsi');
  await esxiDisk(dir, 'rhel9-db02', 104857600, '3f9a0c12', 'lsilogic');
  // Workstation's default single-file disk, and two snapshots: real monolithicSparse files.
  qemuImg('-f', 'vmdk', path.join(dir, 'disk.vmdk'), '20G');
  qemuImg('-f', 'vmdk', '-b', 'disk.vmdk', '-F', 'vmdk', path.join(dir, 'disk-000001.vmdk'));
  qemuImg('-f', 'vmdk', '-b', 'disk-000001.vmdk', '-F', 'vmdk', path.join(dir, 'disk-000002.vmdk'));
  // Workstation's "split into multiple files" disk.
  await write(
    path.join(dir, 'Windows 10 x64.vmdk'),
    descriptor({
      cid: '9e1f6a20',
      createType: 'twoGbMaxExtentSparse',
      extents: [
        'RW 8323072 SPARSE "Windows 10 x64-s001.vmdk"',
        'RW 4259840 SPARSE "Windows 10 x64-s002.vmdk"',
      ],
      adapter: 'lsilogic',
      extra: [
        'ddb.geometry.cylinders = "783"',
        'ddb.geometry.heads = "255"',
        'ddb.geometry.sectors = "63"',
        'ddb.longContentID = "2b8c0e5d41f7a9c3e06d1b729e1f6a20"',
        'ddb.uuid = "60 00 C2 9d 11 7a 2e 0f-c4 83 5b 1e 90 6d 4a 72"',
        'ddb.virtualHWVersion = "16"',
      ],
    }),
  );
  await write(path.join(dir, 'Windows 10 x64-s001.vmdk'), '');
  await write(path.join(dir, 'Windows 10 x64-s002.vmdk'), '');
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-vmx-'));
  node = new WatchedNode();
  ctx = { node, log: silent, tmpDir: path.join(root, 'tmp') };
  for (const name of await fs.readdir(GOLDEN)) {
    if (name.endsWith('.vmx')) await fs.copyFile(path.join(GOLDEN, name), path.join(root, name));
  }
  await createCorpusDisks(root);
});
afterAll(() => fs.rm(root, { recursive: true, force: true }));

const read = (file: string): Promise<SourceGuest> => new VmxReader().read([file], {}, ctx);

describe('-i vmx corpus (golden)', () => {
  it.each([
    'esxi67-linux.vmx',
    'esxi70-windows.vmx',
    'esxi80-nvme.vmx',
    'workstation-ubuntu.vmx',
    'workstation-split.vmx',
  ])('%s', async (name) => {
    const guest = await read(path.join(root, name));
    await expectGolden(guest, path.join(GOLDEN, name), root);
    expect(node.writes).toEqual([]);
  });

  it('follows a Workstation snapshot chain of binary sparse disks to the base', async () => {
    const g = await read(path.join(root, 'workstation-ubuntu.vmx'));
    expect(g.disks).toHaveLength(1);
    expect(g.disks[0]).toMatchObject({
      path: path.join(root, 'disk-000002.vmdk'),
      backingChain: [path.join(root, 'disk-000001.vmdk'), path.join(root, 'disk.vmdk')],
      bus: 'sata',
      controller: 'sata',
      slot: 'sata0:0',
      capacityBytes: 20 * 1024 ** 3,
    });
    // The binary disks are larger than 1 MiB: only their start was read.
    expect(node.rangeReads.some(([p]) => p.endsWith('disk.vmdk'))).toBe(true);
  });

  it('follows an ESXi seSparse snapshot (text descriptors) and keeps /vmfs paths', async () => {
    const g = await read(path.join(root, 'esxi70-windows.vmx'));
    expect(g.disks.map((d) => [d.slot, d.path, d.backingChain])).toEqual([
      [
        'scsi0:0',
        path.join(root, 'win2019-sql-000001.vmdk'),
        [path.join(root, 'win2019-sql.vmdk')],
      ],
      ['scsi0:1', path.join(root, 'win2019-sql_1.vmdk'), []],
    ]);
    expect(g.cdroms[0]?.path).toMatch(/^\/vmfs\/volumes\/5f1a2b3c-.*\.ISO$/);
    expect(g.cpuTopology).toEqual({ sockets: 2, cores: 2, threads: 1 });
  });

  it('decodes windows-1252 and |XX escapes; a split disk is its descriptor', async () => {
    const g = await read(path.join(root, 'workstation-split.vmx'));
    expect(g.name).toBe('Windows 10 x64 "Büro – Empfang"');
    expect(g.disks[0]).toMatchObject({
      path: path.join(root, 'Windows 10 x64.vmdk'),
      backingChain: [],
      controller: 'lsisas1068',
      capacityBytes: (8323072 + 4259840) * 512,
    });
  });
});

describe('parsing the .vmx dictionary', () => {
  const f = '/vms/t.vmx';
  const parse = (text: string) => parseVmx(Buffer.from(text, 'utf8'), f);

  it('keys in any case, comments, blank lines, CRLF, escapes, bare values', () => {
    const vmx = parse(
      [
        '\uFEFF.encoding = "UTF-8"',
        '# a comment',
        '',
        '   DisplayName = "a |22quoted|22 |7C piped |23 name"   # trailing comment',
        'memSize = 2048\r',
        'Ethernet0.Present = "true"',
        'empty = ""',
      ].join('\n'),
    );
    expect(vmx.str('displayname')).toBe('a "quoted" | piped # name');
    expect(vmx.entry('DISPLAYNAME')?.line).toBe(4);
    expect(vmx.uint('memsize')).toBe(2048);
    expect(vmx.bool('ethernet0.present')).toBe(true);
    expect(vmx.str('empty')).toBe('');
    expect(vmx.str('absent')).toBeUndefined();
    expect(vmx.encoding).toBe('utf-8');
  });

  it('decodes escaped bytes in the file encoding; a lone | stays', () => {
    expect(unescapeVmx('caf|C3|A9 |x |7')).toBe('café |x |7');
    expect(unescapeVmx('caf|E9', 'windows-1252')).toBe('café');
  });

  it('keeps the last of duplicate keys, with a note', () => {
    const vmx = parse('memsize = "1024"\nMEMSIZE = "2048"\n');
    expect(vmx.str('memsize')).toBe('2048');
    expect(vmx.notes).toEqual(['duplicate key MEMSIZE on lines 1 and 2: the last is used']);
  });

  it('reads text without .encoding that is not UTF-8 as windows-1252, with a note', () => {
    const vmx = parseVmx(Buffer.from('displayName = "caf\xe9"\n', 'latin1'), f);
    expect(vmx.str('displayName')).toBe('café');
    expect(vmx.notes).toEqual(['no .encoding and not valid UTF-8: read as windows-1252']);
  });

  it.each([
    ['', `${f}: empty file: no VMware configuration in it`],
    ['\n  \n', `${f}: empty file: no VMware configuration in it`],
    ['# only a comment\n', `${f}: no key = "value" lines: not a VMware configuration (.vmx)`],
    [
      'memsize = "1"\nthis line has no equals sign\n',
      `${f}:2: expected key = "value", got: this line has no equals sign`,
    ],
    ['a = "1"\n= "2"\n', `${f}:2: expected key = "value", got: = "2"`],
    ['a = "1"\nb = "unterminated\n', `${f}:2: unterminated quoted value`],
    ['b = "x" y\n', `${f}:1: unexpected text after the closing quote: y`],
    ['b = x"y\n', `${f}:1: stray quote in value: x"y`],
    ['.encoding = "klingon"\n', `${f}:1: .encoding = "klingon": unknown encoding`],
    [
      'a = "1"\n.encoding = "UTF-8"\nb = "\xff"\n',
      `${f}:2: the text is not valid UTF-8 (as .encoding says)`,
    ],
    [
      '# Disk DescriptorFile\nversion=1\n',
      `${f}: this is a VMDK disk, not a VMware configuration (.vmx)`,
    ],
    [
      'a = "1"\nb = "x\x01y"\n',
      `${f}:2: binary data (byte 0x01): not a VMware configuration (.vmx)`,
    ],
  ])('refuses %j', (text, message) => {
    const err = (() => {
      try {
        parseVmx(Buffer.from(text, 'latin1'), f);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MetadataError);
    expect((err as Error).message).toBe(message);
  });

  it('typed getters name the line', () => {
    const vmx = parse('a = "1"\nnumvcpus = "-1"\nflag = "maybe"\n');
    expect(() => vmx.uint('numvcpus')).toThrow(`${f}:2: numvcpus = "-1": expected a whole number`);
    expect(() => vmx.bool('flag')).toThrow(`${f}:3: flag = "maybe": expected TRUE or FALSE`);
  });
});

describe('VMDK descriptors', () => {
  it('parses createType, CIDs, parent hint and extents', () => {
    const d = parseVmdkDescriptor(
      descriptor({
        cid: 'ABCDEF01',
        parentCid: '12345678',
        createType: 'vmfsSparse',
        parent: 'base.vmdk',
        extents: ['RW 4192256 VMFSSPARSE "t-delta.vmdk"', 'RDONLY 100 ZERO'],
      }),
      '/d/t.vmdk',
    );
    expect(d).toEqual({
      file: '/d/t.vmdk',
      embedded: false,
      cid: 'abcdef01',
      parentCid: '12345678',
      createType: 'vmfsSparse',
      parentFileNameHint: 'base.vmdk',
      parentHintLine: 6,
      extents: [
        { access: 'RW', sectors: 4192256, type: 'VMFSSPARSE', file: 't-delta.vmdk', line: 10 },
        { access: 'RDONLY', sectors: 100, type: 'ZERO', file: undefined, line: 11 },
      ],
    });
  });

  it('refuses text that is not a descriptor', () => {
    expect(() => parseVmdkDescriptor('hello\nworld\n', '/d/x.vmdk')).toThrow(
      '/d/x.vmdk: not a VMDK descriptor (no createType, no extent lines)',
    );
  });

  it('reads the header and embedded descriptor of a real monolithicSparse file', async () => {
    const file = path.join(root, 'disk.vmdk');
    const head = await fs.readFile(file);
    expect(parseSparseHeader(head, file)).toEqual({
      version: 1,
      capacitySectors: 41943040,
      descriptorOffset: 1,
      descriptorSize: 20,
    });
    const st = await node.stat(file);
    if (!st) throw new Error('no disk.vmdk');
    const d = await readVmdkDescriptor(node, file, st);
    expect(d).toMatchObject({ embedded: true, createType: 'monolithicSparse' });
    expect(d.extents).toEqual([
      { access: 'RW', sectors: 41943040, type: 'SPARSE', file: 'disk.vmdk', line: 8 },
    ]);
  });

  it('reads a text descriptor padded with NULs to a sector, as qemu-img may write it', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'padded-'));
    const file = path.join(dir, 'padded.vmdk');
    const text = [
      '# Disk DescriptorFile',
      'version=1',
      'CID=fffffffe',
      'parentCID=ffffffff',
      'createType="monolithicFlat"',
      '',
      'RW 20480 FLAT "padded-flat.vmdk" 0',
      '',
    ].join('\n');
    await fs.writeFile(file, Buffer.concat([Buffer.from(text), Buffer.alloc(512 - text.length)]));
    const st = await node.stat(file);
    if (!st) throw new Error('no padded.vmdk');
    const d = await readVmdkDescriptor(node, file, st);
    expect(d.createType).toBe('monolithicFlat');
    expect(d.extents.map((e) => e.file)).toEqual(['padded-flat.vmdk']);
  });

  it('refuses other image formats, binary data and text over 1 MiB', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'vmdk-'));
    const qcow = path.join(dir, 'q.vmdk');
    qemuImg('-f', 'qcow2', qcow, '1G');
    const garbage = path.join(dir, 'g.vmdk');
    await write(garbage, Buffer.from([0x23, 0x20, 0x00, 0x01, 0x02]));
    const big = path.join(dir, 'big.vmdk');
    await write(big, `createType="vmfs"\n${'# padding\n'.repeat(110_000)}`);
    const split = path.join(dir, 's-s001.vmdk');
    qemuImg('-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', path.join(dir, 's.vmdk'), '1G');
    const cases: [string, string][] = [
      [qcow, 'not a VMDK descriptor: a qcow2 image'],
      [garbage, 'not a VMDK descriptor: binary data at byte 2 and no sparse VMDK header (KDMV)'],
      [big, 'not a VMDK descriptor: a text file larger than 1 MiB'],
      [split, 'sparse VMDK with an empty embedded descriptor (an extent of a split disk?)'],
    ];
    for (const [file, problem] of cases) {
      const st = await node.stat(file);
      if (!st) throw new Error(`no ${file}`);
      await expect(readVmdkDescriptor(node, file, st)).rejects.toThrow(`${file}: ${problem}`);
    }
  });
});

/** A fresh directory under the test's temp dir, with a .vmx made of `lines`. */
async function vmxCase(lines: string[]): Promise<{ dir: string; vmx: string }> {
  const dir = await fs.mkdtemp(path.join(root, 'case-'));
  const vmx = path.join(dir, 'guest.vmx');
  await write(vmx, `${lines.join('\n')}\n`);
  return { dir, vmx };
}

const HEAD = ['.encoding = "UTF-8"', 'config.version = "8"', 'virtualHW.version = "19"'];

describe('mapping .vmx keys onto the model', () => {
  it('defaults: name from the file, 1 vCPU, 32 MiB noted, BIOS, vmvga, no sound', async () => {
    const { vmx } = await vmxCase([...HEAD, 'guestOS = "other-64"']);
    const g = await read(vmx);
    expect(g).toMatchObject({
      name: 'guest',
      hypervisor: 'vmware',
      firmware: 'bios',
      memoryBytes: 32 * 1024 * 1024,
      vcpus: 1,
      osHint: 'other-64',
      disks: [],
      video: { model: 'vmvga' },
      origin: { kind: 'vmx', source: vmx },
    });
    expect(g.cpuTopology).toBeUndefined();
    expect(g.sound).toBeUndefined();
    expect(g.notes).toEqual(["no memsize: VMware's default of 32 MiB is used"]);
  });

  it('NIC models, MACs and networks', async () => {
    const { vmx } = await vmxCase([
      ...HEAD,
      'memsize = "512"',
      'ethernet0.present = "TRUE"',
      'ethernet0.connectionType = "hostonly"',
      'ethernet0.generatedAddress = "00:0c:29:00:00:01"',
      'ethernet1.present = "TRUE"',
      'ethernet1.virtualDev = "vmxnet"',
      'ethernet1.features = "15"',
      'ethernet1.networkName = "VM Network"',
      'ethernet1.addressType = "static"',
      'ethernet1.address = "00-50-56-00-00-02"',
      'ethernet2.present = "FALSE"',
      'ethernet2.virtualDev = "vmxnet3"',
      'ethernet3.present = "TRUE"',
      'ethernet3.virtualDev = "sriov"',
      'ethernet3.generatedAddress = "nonsense"',
      'ethernet3.startConnected = "FALSE"',
      'ethernet10.present = "TRUE"',
      'ethernet10.virtualDev = "vmxnet"',
      'ethernet10.connectionType = "pvn"',
      'ethernet10.pvnID = "52 0b 1c"',
    ]);
    const g = await read(vmx);
    expect(g.nics).toEqual([
      { mac: '00:0c:29:00:00:01', model: 'vlance', network: 'ethernet0', networkKind: 'network' },
      {
        mac: '00:50:56:00:00:02',
        model: 'vmxnet2',
        network: 'VM Network',
        networkKind: 'portgroup',
      },
      { model: 'unknown', network: 'ethernet3', networkKind: 'network' },
      { model: 'vmxnet', network: 'ethernet10', networkKind: 'network' },
    ]);
    expect(g.notes).toEqual([
      "ethernet0 has no virtualDev: vlance assumed (VMware's default)",
      'ethernet0: no networkName; Workstation connectionType "hostonly": network named "ethernet0" as virt-v2v does',
      'ethernet3: not connected at power-on',
      'unknown NIC model "sriov" on ethernet3',
      'ethernet3: "nonsense" is not a MAC address',
      'ethernet3 names no network (no networkName, no connectionType): network named "ethernet3" as virt-v2v does',
      'ethernet10 has no MAC address',
      'ethernet10: no networkName; Workstation connectionType "pvn" (pvnID "52 0b 1c"): network named "ethernet10" as virt-v2v does',
    ]);
  });

  it('controllers, skipped devices, boot order from bios.hddOrder, disk modes', async () => {
    const { dir, vmx } = await vmxCase([
      ...HEAD,
      'memsize = "1024"',
      'scsi0.present = "TRUE"',
      'scsi0.virtualDev = "buslogic"',
      'scsi0:0.present = "TRUE"',
      'scsi0:0.fileName = "a.vmdk"',
      'scsi0:1.present = "TRUE"',
      'scsi0:1.fileName = "b.vmdk"',
      'scsi0:1.mode = "independent-nonpersistent"',
      'scsi0:1.readonly = "TRUE"',
      'scsi0:2.present = "FALSE"',
      'scsi0:2.fileName = "missing-but-not-present.vmdk"',
      'scsi1.present = "FALSE"',
      'scsi1:0.present = "TRUE"',
      'scsi1:0.fileName = "missing-on-absent-controller.vmdk"',
      'scsi2.present = "TRUE"',
      'scsi2.virtualDev = "megaraid"',
      'scsi2:3.present = "TRUE"',
      'scsi2:3.deviceType = "scsi-passthru"',
      'scsi2:3.fileName = "/dev/sg3"',
      'ide0:0.present = "TRUE"',
      'ide0:0.deviceType = "ata-hardDisk"',
      'ide0:0.fileName = "c.vmdk"',
      'ide1:0.present = "TRUE"',
      'ide1:0.fileName = "install.iso"',
      'ide1:1.present = "TRUE"',
      'ide1:1.deviceType = "cdrom-image"',
      'ide1:1.fileName = ""',
      'ide0:1.present = "TRUE"',
      'ide0:1.deviceType = "tape"',
      'bios.bootOrder = "cdrom,hdd"',
      'bios.hddOrder = "ide0:0,scsi0:1,scsi3:0"',
      'firmware = "pcbios"',
      'sound.present = "TRUE"',
    ]);
    for (const name of ['a', 'b', 'c']) await esxiDisk(dir, name, 2048, 'fffffffe', 'buslogic');
    const g = await read(vmx);
    expect(g.disks.map((d) => [d.slot, d.controller, d.bootOrder, d.readOnly])).toEqual([
      ['scsi0:0', 'buslogic', undefined, false],
      ['scsi0:1', 'buslogic', 2, true],
      ['ide0:0', 'ide', 1, false],
    ]);
    expect(g.disks[2]).toMatchObject({ bus: 'ide', controllerIndex: 0, unit: 0 });
    expect(g.cdroms).toEqual([
      { bus: 'ide', slot: 'ide1:0', path: path.join(dir, 'install.iso') },
      { bus: 'ide', slot: 'ide1:1' },
    ]);
    expect(g.firmware).toBe('unknown');
    expect(g.sound).toEqual({ model: 'es1371' });
    expect(g.notes).toEqual([
      'scsi0:1: disk mode independent-nonpersistent: changes are discarded at power-off',
      'scsi1:0 skipped: its controller is not present',
      'unknown SCSI controller model "megaraid" on scsi2',
      'scsi2:3: generic SCSI passthrough device not modeled',
      'ide0:1: unknown deviceType "tape" skipped',
      'ide1:0 has no deviceType and an .iso file: taken as a CD-ROM',
      'boot device order (bios.bootOrder): cdrom,hdd',
      'bios.hddOrder names scsi3:0, which is not a disk',
      "sound.virtualDev absent: es1371 assumed (VMware's default)",
      'unknown firmware "pcbios"',
    ]);
  });

  it('notes device families present but not modeled, flags and resource settings', async () => {
    const { vmx } = await vmxCase([
      ...HEAD,
      'memsize = "1024"',
      'floppy0.present = "TRUE"',
      'serial0.present = "TRUE"',
      'serial1.present = "FALSE"',
      'pciPassthru0.present = "TRUE"',
      'usb_xhci.present = "TRUE"',
      'serial2.present = "TRUE"',
      'ehci.present = "TRUE"',
      'vhv.enable = "TRUE"',
      'vtpm.present = "TRUE"',
      'sched.cpu.affinity = "0,1"',
      'sched.mem.shares = "normal"',
      'sched.swap.derivedName = "/x.vswp"',
      'checkpoint.vmState = "guest-1a2b.vmss"',
      'encryption.keySafe = "vmware:key/list/..."',
      'uuid.bios = "not a uuid"',
      'svga.present = "FALSE"',
    ]);
    const g = await read(vmx);
    expect(g.video).toBeUndefined();
    expect(g.uuid).toBeUndefined();
    expect(g.notes).toEqual([
      'floppy0: floppy drive not modeled',
      'serial0, serial2: serial port not modeled',
      'pciPassthru0: PCI passthrough device not modeled',
      'usb_xhci, ehci: USB controller not modeled',
      'nested virtualization (vhv.enable) not modeled',
      'virtual TPM (vtpm.present) not modeled: its secrets stay on the source',
      'resource settings not modeled: sched.cpu.affinity="0,1"',
      'the VM is suspended (checkpoint.vmState): its memory state is not carried over',
      'the VM is encrypted (encryption.*): its disks cannot be read without its key',
      'uuid.bios "not a uuid" is not a UUID',
    ]);
  });

  it('notes a CID mismatch, raw device mappings and extents that are not files', async () => {
    const { dir, vmx } = await vmxCase([
      ...HEAD,
      'memsize = "1024"',
      'scsi0.present = "TRUE"',
      'scsi0.virtualDev = "lsisas1068"',
      'scsi0:0.fileName = "os-000001.vmdk"',
      'scsi0:1.fileName = "lun.vmdk"',
      'scsi0:2.fileName = "vsan.vmdk"',
    ]);
    await esxiDisk(dir, 'os', 2048, '0000000a', 'lsilogic');
    await write(
      path.join(dir, 'os-000001.vmdk'),
      descriptor({
        cid: 'b',
        parentCid: '0000000f',
        createType: 'vmfsSparse',
        parent: 'os.vmdk',
        extents: [],
      }),
    );
    await write(
      path.join(dir, 'lun.vmdk'),
      descriptor({
        cid: 'c',
        createType: 'vmfsPassthroughRawDeviceMap',
        extents: ['RW 2048 VMFSRDM "lun-rdmp.vmdk"'],
      }),
    );
    await write(path.join(dir, 'lun-rdmp.vmdk'), '');
    await write(
      path.join(dir, 'vsan.vmdk'),
      descriptor({
        cid: 'd',
        createType: 'vmfs',
        extents: ['RW 2048 VMFS "vsan://5223a1b2c3d4e5f6"'],
      }),
    );
    const g = await read(vmx);
    expect(g.disks.map((d) => [d.slot, d.backingChain.length, d.capacityBytes])).toEqual([
      ['scsi0:0', 1, undefined],
      ['scsi0:1', 0, 2048 * 512],
      ['scsi0:2', 0, 2048 * 512],
    ]);
    expect(g.notes).toEqual([
      'scsi0:0: parentCID of os-000001.vmdk does not match the CID of os.vmdk (the parent changed after the snapshot)',
      'scsi0:1: raw device mapping (vmfsPassthroughRawDeviceMap): the data is on a LUN, not in the file',
      'vsan.vmdk: extent vsan://5223a1b2c3d4e5f6 is not a file',
    ]);
  });

  it('refuses a Windows path as parentFileNameHint', async () => {
    const { dir, vmx } = await vmxCase([
      ...HEAD,
      'sata0.present = "TRUE"',
      'sata0:0.fileName = "w-000001.vmdk"',
    ]);
    await write(
      path.join(dir, 'w-000001.vmdk'),
      descriptor({
        cid: 'b',
        createType: 'monolithicSparse',
        parent: 'C:\\VMs\\base.vmdk',
        extents: [],
      }),
    );
    await expect(read(vmx)).rejects.toThrow(
      `${dir}/w-000001.vmdk:6: parentFileNameHint "C:\\VMs\\base.vmdk" is a Windows path`,
    );
  });

  it('refuses a core count that does not divide the vCPUs, naming file and line', async () => {
    const { vmx } = await vmxCase([...HEAD, 'numvcpus = "6"', 'cpuid.coresPerSocket = "4"']);
    await expect(read(vmx)).rejects.toThrow(
      `${vmx}:5: cpuid.coresPerSocket = "4": does not divide numvcpus (6) into whole sockets`,
    );
  });

  it('refuses a Windows disk path', async () => {
    const { vmx } = await vmxCase([
      ...HEAD,
      'sata0.present = "TRUE"',
      'sata0:0.fileName = "C:\\VMs\\w.vmdk"',
    ]);
    await expect(read(vmx)).rejects.toThrow(
      `${vmx}:5: sata0:0.fileName = "C:\\VMs\\w.vmdk": a Windows path, which cannot be read here`,
    );
  });

  it('takes exactly one source', () => {
    expect(() => new VmxReader().check([], {})).toThrow(UsageError);
    expect(() => new VmxReader().check(['a.vmx', 'b.vmx'], {})).toThrow(
      '-i vmx: give exactly one .vmx file (got 2)',
    );
  });
});

describe('symlinks (stat does not follow them)', () => {
  it('reads a symlinked .vmx and disks with bounded reads', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'links-'));
    await fs.symlink(path.join(root, 'workstation-ubuntu.vmx'), path.join(dir, 'link.vmx'));
    for (const name of ['disk.vmdk', 'disk-000001.vmdk', 'disk-000002.vmdk']) {
      await fs.symlink(path.join(root, name), path.join(dir, name));
    }
    const watched = new WatchedNode();
    const g = await new VmxReader().read(
      [path.join(dir, 'link.vmx')],
      {},
      { ...ctx, node: watched },
    );
    expect(g.disks[0]?.backingChain).toEqual([
      path.join(dir, 'disk-000001.vmdk'),
      path.join(dir, 'disk.vmdk'),
    ]);
    expect(watched.commands).toEqual([]);
    expect(watched.rangeReads[0]).toEqual([path.join(dir, 'link.vmx'), 0, 8193 * 512]);
    expect(watched.rangeReads.every(([, , length]) => length <= 8193 * 512)).toBe(true);
  });

  it('a symlink to an endless device is refused after a bounded read', async () => {
    const { dir, vmx } = await vmxCase([
      ...HEAD,
      'memsize = "1024"',
      'sata0.present = "TRUE"',
      'sata0:0.fileName = "zero.vmdk"',
    ]);
    // a huge sparse file of zeros in the test's own dir stands in for /dev/zero
    const zeros = path.join(dir, 'zeros.img');
    await fs.writeFile(zeros, '');
    await fs.truncate(zeros, 64 * 1024 ** 3);
    await fs.symlink(zeros, path.join(dir, 'zero.vmdk'));
    await expect(read(vmx)).rejects.toThrow(
      `${dir}/zero.vmdk: not a VMDK descriptor: binary data at byte 0 and no sparse VMDK header (KDMV)`,
    );
    const endless = path.join(dir, 'endless.vmx');
    await fs.symlink(zeros, endless);
    await expect(read(endless)).rejects.toThrow(
      `${endless}: more than 4 MiB: too large for a .vmx`,
    );
  });
});

/** Every file under `dir` with its bytes and mtime, to prove nothing changed. */
async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name);
    const st = await fs.lstat(p);
    out[p] = e.isFile()
      ? `${st.mtimeMs}:${(await fs.readFile(p)).toString('base64')}`
      : e.isFIFO()
        ? 'fifo'
        : 'dir';
  }
  return out;
}

describe('broken and hostile .vmx files', () => {
  const simple = [
    ...HEAD,
    'memsize = "1024"',
    'scsi0.present = "TRUE"',
    'scsi0.virtualDev = "pvscsi"',
  ];

  it('an empty file', async () => {
    const { vmx } = await vmxCase([]);
    await write(vmx, '');
    await expect(read(vmx)).rejects.toThrow(`${vmx}: empty file: no VMware configuration in it`);
  });

  it('binary garbage', async () => {
    const { vmx } = await vmxCase([]);
    await write(vmx, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 255)));
    await expect(read(vmx)).rejects.toThrow(
      new RegExp(`^${vmx}:1: binary data \\(byte 0x[0-9a-f]{2}\\): not a VMware configuration`),
    );
  });

  it('a line without =', async () => {
    const { vmx } = await vmxCase([...HEAD, 'memsize "1024"']);
    await expect(read(vmx)).rejects.toThrow(
      `${vmx}:4: expected key = "value", got: memsize "1024"`,
    );
  });

  it('an absurd memsize fails validation, naming the file', async () => {
    const { vmx } = await vmxCase([...HEAD, 'memsize = "1000000000000000000000000000000"']);
    await expect(read(vmx)).rejects.toThrow(
      new RegExp(`^${vmx}: invalid guest description: .*memoryBytes: memory above 16 TiB`),
    );
  });

  it('numvcpus = "-1"', async () => {
    const { vmx } = await vmxCase([...HEAD, 'memsize = "1024"', 'numvcpus = "-1"']);
    await expect(read(vmx)).rejects.toThrow(`${vmx}:5: numvcpus = "-1": expected a whole number`);
    const zero = await vmxCase([...HEAD, 'memsize = "1024"', 'numvcpus = "0"']);
    await expect(read(zero.vmx)).rejects.toThrow(
      `${zero.vmx}:5: numvcpus = "0": expected at least 1 vCPU`,
    );
  });

  it('a missing disk names the vmx, the line and the disk', async () => {
    const { dir, vmx } = await vmxCase([
      ...simple,
      'scsi0:0.present = "TRUE"',
      'scsi0:0.fileName = "gone.vmdk"',
    ]);
    await expect(read(vmx)).rejects.toThrow(
      new MetadataError(
        vmx,
        `scsi0:0: disk ${path.join(dir, 'gone.vmdk')} does not exist on local`,
        {
          line: 8,
        },
      ),
    );
    await expect(read(vmx)).rejects.toThrow(
      `${vmx}:8: scsi0:0: disk ${dir}/gone.vmdk does not exist`,
    );
  });

  it('a missing extent names the descriptor and line', async () => {
    const { dir, vmx } = await vmxCase([...simple, 'scsi0:0.fileName = "d.vmdk"']);
    await write(
      path.join(dir, 'd.vmdk'),
      descriptor({ cid: '1', createType: 'vmfs', extents: ['RW 8 VMFS "d-flat.vmdk"'] }),
    );
    await expect(read(vmx)).rejects.toThrow(
      `${dir}/d.vmdk:9: extent ${dir}/d-flat.vmdk does not exist on local`,
    );
  });

  it('a delta chain that loops', async () => {
    const { dir, vmx } = await vmxCase([...simple, 'scsi0:0.fileName = "a.vmdk"']);
    for (const [me, parent] of [
      ['a', 'b'],
      ['b', 'a'],
    ] as const) {
      await write(
        path.join(dir, `${me}.vmdk`),
        descriptor({
          cid: '1',
          parentCid: '1',
          createType: 'vmfsSparse',
          parent: `${parent}.vmdk`,
          extents: [],
        }),
      );
    }
    await expect(read(vmx)).rejects.toThrow(
      `${dir}/b.vmdk:6: snapshot chain loops: ${dir}/a.vmdk -> ${dir}/b.vmdk -> ${dir}/a.vmdk`,
    );
  });

  it('a delta chain deeper than 255', async () => {
    const { dir, vmx } = await vmxCase([...simple, 'scsi0:0.fileName = "d0.vmdk"']);
    for (let i = 0; i <= 256; i++) {
      await write(
        path.join(dir, `d${i}.vmdk`),
        descriptor({
          cid: '1',
          parentCid: '1',
          createType: 'vmfsSparse',
          parent: `d${i + 1}.vmdk`,
          extents: [],
        }),
      );
    }
    await expect(read(vmx)).rejects.toThrow(
      `${vmx}:7: scsi0:0: snapshot chain of ${dir}/d0.vmdk is deeper than 255 disks`,
    );
  });

  it('a parentFileNameHint outside the VM directory is only read, and must exist', async () => {
    const top = await fs.mkdtemp(path.join(root, 'hostile-'));
    const canary = path.join(top, 'canary.vmdk');
    await write(
      canary,
      descriptor({
        cid: 'c0ffee00',
        createType: 'monolithicFlat',
        extents: ['RW 8 FLAT "canary-flat.vmdk"'],
      }),
    );
    await write(path.join(top, 'canary-flat.vmdk'), 'canary data, never to be touched\n');
    const vmDir = path.join(top, 'vm');
    const vmx = path.join(vmDir, 'guest.vmx');
    await write(
      vmx,
      `${[...simple, 'scsi0:0.fileName = "abs.vmdk"', 'scsi1.present = "TRUE"', 'scsi1.virtualDev = "pvscsi"', 'scsi1:0.fileName = "rel.vmdk"'].join('\n')}\n`,
    );
    await write(
      path.join(vmDir, 'abs.vmdk'),
      descriptor({
        cid: '1',
        parentCid: 'c0ffee00',
        createType: 'vmfsSparse',
        parent: canary,
        extents: [],
      }),
    );
    await write(
      path.join(vmDir, 'rel.vmdk'),
      descriptor({
        cid: '2',
        parentCid: 'c0ffee00',
        createType: 'vmfsSparse',
        parent: '../canary.vmdk',
        extents: [],
      }),
    );
    const before = await snapshotTree(top);
    const watched = new WatchedNode();
    const g = await new VmxReader().read(
      [vmx],
      {},
      { node: watched, log: silent, tmpDir: path.join(top, 'tmp') },
    );
    expect(g.disks.map((d) => d.backingChain)).toEqual([[canary], [canary]]);
    expect(await snapshotTree(top)).toEqual(before);
    expect(watched.writes).toEqual([]);
    expect(watched.commands).toEqual([]);

    // The same hint at a file that is not a descriptor: an error that does not echo its bytes.
    await write(canary, 'root:$6$secret-hash:19000:0:99999:7:::\n');
    const before2 = await snapshotTree(top);
    const err = await new VmxReader()
      .read([vmx], {}, { node: watched, log: silent, tmpDir: top })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect((err as Error).message).toBe(
      `${canary}: not a VMDK descriptor (no createType, no extent lines)`,
    );
    expect((err as Error).message).not.toContain('secret');
    expect(await snapshotTree(top)).toEqual(before2);

    // A hint at a missing file outside the directory, and at a FIFO (never opened).
    await fs.rm(canary);
    await expect(read(vmx)).rejects.toThrow(
      `${vmDir}/abs.vmdk:6: parent disk ${canary} (parentFileNameHint) does not exist on local`,
    );
    execFileSync('mkfifo', [canary]);
    await expect(read(vmx)).rejects.toThrow(`${canary}: not a regular file (other)`);
    expect(watched.writes).toEqual([]);
  });
});
