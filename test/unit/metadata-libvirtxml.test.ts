/**
 * libvirt domain XML: the `libvirtxml` reader against a corpus of XML as `virsh dumpxml` and
 * the Xen toolstacks write it (golden files), hostile and broken inputs, and the live `libvirt`
 * reader against a fake node (the real one is in test/integration/metadata-libvirt.test.ts).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError, MetadataError, UsageError } from '../../src/errors.js';
import type { Logger } from '../../src/log/logger.js';
import { parseDomainXml } from '../../src/metadata/libvirt/domain-xml.js';
import { LibvirtReader } from '../../src/metadata/libvirt/libvirt-reader.js';
import { LibvirtXmlReader } from '../../src/metadata/libvirt/libvirtxml-reader.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import type { ReaderContext } from '../../src/metadata/reader.js';
import { LocalNode } from '../../src/node/local-node.js';
import type { FileStat, Node, RunOptions, RunResult } from '../../src/node/node.js';
import { expectGolden } from '../harness/golden.js';

const GOLDEN_DIR = path.join(import.meta.dirname, '../golden/metadata/libvirtxml');
const CORPUS = [
  'xen-pv-pygrub.xml',
  'xen-pv-kernel.xml',
  'xen-hvm.xml',
  'kvm-q35-uefi.xml',
  'kvm-i440fx-bios.xml',
  'vmware-esx-libvirt.xml',
];

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const local = new LocalNode();
const reader = new LibvirtXmlReader();
const roots: string[] = [];

async function tempRoot(): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-libvirtxml-'));
  roots.push(root);
  return root;
}

afterAll(async () => {
  await Promise.all(roots.map((r) => fs.rm(r, { recursive: true, force: true })));
});

function ctx(tmpDir: string, node: Node = local): ReaderContext {
  return { node, log: silent, tmpDir };
}

/**
 * Copies a corpus XML into a fresh root, moving every absolute `<source file|dev>` under that
 * root (as if the root were the source host's `/`), and creates those files there.
 */
async function stage(name: string): Promise<{ root: string; file: string }> {
  const root = await tempRoot();
  const text = await fs.readFile(path.join(GOLDEN_DIR, name), 'utf8');
  const paths: string[] = [];
  const staged = text.replace(
    /(<source\b[^>]*?\b(?:file|dev)=)(['"])(\/[^'"]*)\2/g,
    (_m, pre: string, q: string, p: string) => {
      paths.push(p);
      return `${pre}${q}${root}${p}${q}`;
    },
  );
  for (const p of paths) {
    await fs.mkdir(path.dirname(path.join(root, p)), { recursive: true });
    await fs.writeFile(path.join(root, p), '');
  }
  const file = path.join(root, name);
  await fs.writeFile(file, staged);
  return { root, file };
}

async function readCorpus(name: string): Promise<{ guest: SourceGuest; root: string }> {
  const { root, file } = await stage(name);
  const guest = await reader.read([file], {}, ctx(root));
  await expectGolden(guest, path.join(GOLDEN_DIR, name), root);
  return { guest, root };
}

/** A small valid domain with `devices` inside `<devices>` and `head` before it. */
function domainXml(devices = '', head = "<memory unit='MiB'>512</memory><vcpu>1</vcpu>"): string {
  return `<domain type='kvm'>\n  <name>t</name>\n  ${head}\n  <os><type arch='x86_64'>hvm</type></os>\n  <devices>${devices}</devices>\n</domain>\n`;
}

function parse(text: string): SourceGuest {
  return parseDomainXml(text, 'test.xml', { kind: 'libvirtxml', source: 'test.xml' }).guest;
}

async function writeXml(text: string | Buffer, name = 'guest.xml'): Promise<string> {
  const root = await tempRoot();
  const file = path.join(root, name);
  await fs.writeFile(file, text);
  return file;
}

async function readError(file: string): Promise<MetadataError> {
  const err = await reader.read([file], {}, ctx(path.dirname(file))).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MetadataError);
  return err as MetadataError;
}

describe('libvirtxml corpus (golden files)', () => {
  it('every corpus file is tested and has its goldens', async () => {
    const files = await fs.readdir(GOLDEN_DIR);
    expect(files.filter((f) => f.endsWith('.xml')).sort()).toEqual([...CORPUS].sort());
  });

  it('Xen PV with pygrub (RHEL 5 xend)', async () => {
    const { guest, root } = await readCorpus('xen-pv-pygrub.xml');
    expect(guest.hypervisor).toBe('xen-pv');
    expect(guest.firmware).toBe('unknown');
    expect(guest.memoryBytes).toBe(1024 ** 3);
    expect(guest.xenPv).toEqual({ bootloader: '/usr/bin/pygrub', console: 'hvc0' });
    expect(guest.disks.map((d) => [d.slot, d.format, d.bus, d.controller])).toEqual([
      ['xvda', 'raw', 'xen', 'xen'],
      ['xvdb', 'raw', 'xen', 'xen'],
    ]);
    expect(guest.disks[1]?.path).toBe(`${root}/dev/VolGroup00/rhel5pv-data`);
    expect(guest.nics).toEqual([
      {
        mac: '00:16:3e:5d:c7:9e',
        model: 'xen-netfront',
        network: 'xenbr0',
        networkKind: 'bridge',
      },
    ]);
  });

  it('Xen PV with a direct kernel', async () => {
    const { guest } = await readCorpus('xen-pv-kernel.xml');
    expect(guest.hypervisor).toBe('xen-pv');
    expect(guest.xenPv).toEqual({
      kernel: '/var/lib/xen/boot/vmlinuz-3.0.101-63-xen',
      initrd: '/var/lib/xen/boot/initrd-3.0.101-63-xen',
      cmdline: 'root=/dev/xvda2 resume=/dev/xvdb console=hvc0 xencons=tty showopts',
      console: 'hvc0',
    });
    expect(guest.disks.map((d) => d.format)).toEqual(['qcow2', 'raw']);
    expect(guest.cdroms).toHaveLength(1);
    expect(guest.video).toEqual({ model: 'xen', vramBytes: 4 * 1024 * 1024 });
  });

  it('Xen HVM (Windows 2003, hvmloader)', async () => {
    const { guest } = await readCorpus('xen-hvm.xml');
    expect(guest.hypervisor).toBe('xen-fv');
    expect(guest.firmware).toBe('bios');
    expect(guest.xenPv).toBeUndefined();
    expect(guest.disks.map((d) => [d.slot, d.bus, d.controllerIndex, d.unit])).toEqual([
      ['hda', 'ide', 0, 0],
      ['hdb', 'ide', 0, 1],
    ]);
    expect(guest.disks[0]?.bootOrder).toBe(2);
    expect(guest.nics[0]?.model).toBe('rtl8139');
    expect(guest.nics[0]?.mac).toBe('00:16:3e:72:1b:04');
    expect(guest.sound).toEqual({ model: 'es1370' });
    expect(JSON.stringify(guest)).not.toContain('s3cr3t');
  });

  it('KVM q35 with UEFI (virt-install, Debian 12)', async () => {
    const { guest } = await readCorpus('kvm-q35-uefi.xml');
    expect(guest.hypervisor).toBe('kvm');
    expect(guest.firmware).toBe('uefi');
    expect(guest.osHint).toBe('http://debian.org/debian/12');
    expect(guest.disks[0]).toMatchObject({ format: 'qcow2', bus: 'virtio', bootOrder: 1 });
    expect(guest.cdroms[0]?.bus).toBe('sata');
    expect(guest.nics[0]).toMatchObject({
      model: 'virtio',
      network: 'default',
      networkKind: 'network',
    });
    expect(guest.video).toEqual({ model: 'qxl', vramBytes: 64 * 1024 * 1024 });
    expect(guest.notes).toContain('unmapped device <tpm model="tpm-crb"> (backend emulator)');
  });

  it('older KVM with i440fx and BIOS', async () => {
    const { guest } = await readCorpus('kvm-i440fx-bios.xml');
    expect(guest.firmware).toBe('bios');
    expect(guest.cpuTopology).toEqual({ sockets: 1, cores: 2, threads: 1 });
    expect(guest.disks.map((d) => [d.slot, d.controller, d.bootOrder])).toEqual([
      ['hda', 'ide', 1],
      ['hdb', 'ide', undefined],
      ['sda', 'lsilogic', undefined],
    ]);
    expect(guest.cdroms).toEqual([{ bus: 'ide', slot: 'hdc' }]);
    expect(guest.video).toEqual({ model: 'cirrus', vramBytes: 9216 * 1024 });
  });

  it('VMware ESX as libvirt describes it', async () => {
    const { guest } = await readCorpus('vmware-esx-libvirt.xml');
    expect(guest.hypervisor).toBe('vmware');
    expect(guest.disks.map((d) => [d.path, d.format, d.controller, d.unit])).toEqual([
      ['[datastore1] win2016-app01/win2016-app01.vmdk', 'vmdk', 'lsisas1068', 0],
      ['[datastore1] win2016-app01/win2016-app01_1.vmdk', 'vmdk', 'lsisas1068', 1],
    ]);
    expect(guest.nics.map((n) => [n.model, n.networkKind, n.network])).toEqual([
      ['vmxnet3', 'portgroup', 'VM Network'],
      ['e1000e', 'portgroup', 'Backup Network'],
    ]);
    expect(guest.cpuTopology).toEqual({ sockets: 2, cores: 2, threads: 1 });
  });
});

describe('domain XML details', () => {
  it.each([
    ['b', '1073741824', 1024 ** 3],
    ['bytes', '1073741824', 1024 ** 3],
    ['KB', '2000000', 2e9],
    ['k', '1048576', 1024 ** 3],
    ['KiB', '1048576', 1024 ** 3],
    ['MB', '2000', 2e9],
    ['M', '1024', 1024 ** 3],
    ['MiB', '1024', 1024 ** 3],
    ['GB', '2', 2e9],
    ['G', '2', 2 * 1024 ** 3],
    ['GiB', '2', 2 * 1024 ** 3],
    ['TB', '1', 1e12],
    ['T', '1', 1024 ** 4],
    ['TiB', '1', 1024 ** 4],
  ])('memory unit %s', (unit, value, bytes) => {
    expect(parse(domainXml('', `<memory unit='${unit}'>${value}</memory>`)).memoryBytes).toBe(
      bytes,
    );
  });

  it('memory without a unit is KiB; currentMemory alone is used; vcpu defaults to 1', () => {
    const g = parse(domainXml('', '<currentMemory>524288</currentMemory>'));
    expect(g.memoryBytes).toBe(512 * 1024 * 1024);
    expect(g.vcpus).toBe(1);
  });

  it('per-device boot order, network and volume disks, unmapped devices', () => {
    const g = parse(
      domainXml(`
      <disk type='network' device='disk'>
        <driver name='qemu' type='raw'/>
        <source protocol='rbd' name='rbd-pool/guest-disk'><host name='mon1' port='6789'/></source>
        <target dev='vdb' bus='virtio'/><boot order='2'/>
      </disk>
      <disk type='volume' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source pool='default' volume='guest.qcow2'/>
        <target dev='vda' bus='virtio'/><boot order='1'/>
      </disk>
      <disk type='file' device='disk'><source file='/x.img'/><target dev='vdc' bus='virtio'/></disk>
      <disk type='file' device='floppy'><source file='/drivers.vfd'/><target dev='fda' bus='fdc'/></disk>
      <hostdev mode='subsystem' type='pci' managed='yes'><source><address bus='0x3'/></source></hostdev>
      <filesystem type='mount' accessmode='passthrough'><source dir='/srv'/><target dir='srv'/></filesystem>
      <interface type='direct'><source dev='eth0' mode='bridge'/><model type='virtio'/></interface>
      <interface type='user'><mac address='52:54:00:00:00:01'/><model type='ne2k_pci'/></interface>`),
    );
    expect(g.disks.map((d) => [d.slot, d.path, d.bootOrder, d.format])).toEqual([
      ['vdb', 'rbd-pool/guest-disk', 2, 'raw'],
      ['vda', 'default/guest.qcow2', 1, 'qcow2'],
      ['vdc', '/x.img', undefined, 'unknown'],
    ]);
    expect(g.nics).toEqual([
      { mac: undefined, model: 'virtio', network: 'eth0', networkKind: 'unknown' },
      { mac: '52:54:00:00:00:01', model: 'unknown', network: undefined, networkKind: 'user' },
    ]);
    expect(g.notes).toEqual([
      'disk vdb: network disk (protocol rbd, "rbd-pool/guest-disk" on mon1:6789) is not a file',
      'disk vdc: no <driver type>, format unknown',
      'floppy fda (/drivers.vfd) not carried over',
      'interface #0: type "direct" (macvtap on eth0, mode bridge)',
      'interface 52:54:00:00:00:01: unknown NIC model "ne2k_pci"',
      'unmapped device <hostdev type="pci" mode="subsystem">',
      'unmapped device <filesystem type="mount">',
    ]);
  });

  it('scsi disks take the model of their controller', () => {
    const disk = (dev: string, controller: number) =>
      `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/${dev}'/>` +
      `<target dev='${dev}' bus='scsi'/><address type='drive' controller='${controller}' bus='0' target='0' unit='3'/></disk>`;
    const g = parse(
      domainXml(
        `${disk('sda', 0)}${disk('sdb', 1)}${disk('sdc', 2)}${disk('sdd', 3)}
        <controller type='scsi' index='0' model='virtio-scsi'/>
        <controller type='scsi' index='1' model='buslogic'/>
        <controller type='scsi' index='2' model='vmpvscsi'/>`,
      ),
    );
    expect(g.disks.map((d) => [d.controller, d.controllerIndex, d.unit])).toEqual([
      ['virtio-scsi', 0, 3],
      ['buslogic', 1, 3],
      ['pvscsi', 2, 3],
      ['unknown', 3, 3],
    ]);
    expect(g.notes).toEqual(['disk sdd: no <controller type="scsi" index="3">, model unknown']);
  });

  it('live XML: a backing chain; os firmware=efi; dies counted as sockets', () => {
    const g = parse(
      `<domain type='qemu'><name>t</name><memory>1048576</memory><vcpu>8</vcpu>
       <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type></os>
       <cpu mode='host-model'><topology sockets='1' dies='2' cores='2' threads='2'/></cpu>
       <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
         <source file='/top.qcow2'/>
         <backingStore type='file'><format type='qcow2'/><source file='/mid.qcow2'/>
           <backingStore type='file'><format type='raw'/><source file='/base.raw'/><backingStore/></backingStore>
         </backingStore>
         <target dev='sda' bus='sata'/></disk></devices></domain>`,
    );
    expect(g.firmware).toBe('uefi');
    expect(g.cpuTopology).toEqual({ sockets: 2, cores: 2, threads: 2 });
    expect(g.disks[0]?.backingChain).toEqual(['/mid.qcow2', '/base.raw']);
    expect(g.notes).toEqual([
      'cpu topology: 2 dies per socket counted as sockets',
      'cpu mode host-model',
    ]);
  });

  it("values named like Object's properties are unknown, not Object's", () => {
    const g = parse(
      domainXml(
        "<disk type='file' device='disk'><driver name='qemu' type='constructor'/><source file='/a'/><target dev='vda' bus='toString'/></disk>" +
          "<interface type='bridge'><source bridge='br0'/><model type='__proto__'/></interface>" +
          "<video><model type='hasOwnProperty'/></video>",
        "<memory unit='MiB'>512</memory><vcpu current='1'>2</vcpu>",
      ),
    );
    expect(g.disks[0]).toMatchObject({ format: 'unknown', bus: 'unknown' });
    expect(g.nics[0]?.model).toBe('unknown');
    expect(g.video?.model).toBe('unknown');
    expect(g.notes).toEqual([
      '1 of 2 vcpus online: all 2 used',
      'disk vda: unknown bus "toString"',
      'disk vda: format "constructor" is not one this tool reads',
      'interface #0: unknown NIC model "__proto__"',
      'unknown video model "hasOwnProperty"',
    ]);
  });

  it('an unknown libvirt domain type is a note, hypervisor unknown', () => {
    const g = parse(domainXml().replace("type='kvm'", "type='lxc'"));
    expect(g.hypervisor).toBe('unknown');
    expect(g.notes).toContain('domain type "lxc" is not a hypervisor this tool converts from');
  });

  it('no osHint without libosinfo metadata', () => {
    expect(parse(domainXml()).osHint).toBeUndefined();
  });
});

describe('libvirtxml reader: disk paths', () => {
  it('a relative disk path is taken relative to the XML file', async () => {
    const file = await writeXml(
      domainXml(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='disks/a.img'/><target dev='vda' bus='virtio'/></disk>",
      ),
    );
    await fs.mkdir(path.join(path.dirname(file), 'disks'));
    await fs.writeFile(path.join(path.dirname(file), 'disks/a.img'), '');
    const g = await reader.read([file], {}, ctx(path.dirname(file)));
    expect(g.disks[0]?.path).toBe(path.join(path.dirname(file), 'disks/a.img'));
  });

  it('a missing disk is an error naming the XML file and the disk', async () => {
    const file = await writeXml(
      domainXml(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/nonexistent/v2v/a.img'/><target dev='vda' bus='virtio'/></disk>",
      ),
    );
    const err = await readError(file);
    expect(err.message).toBe(`${file}: disk vda: /nonexistent/v2v/a.img does not exist`);
  });

  it('a missing CD-ROM image and a pool volume are notes', async () => {
    const file = await writeXml(
      domainXml(
        "<disk type='file' device='cdrom'><source file='/nonexistent/v2v/a.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>" +
          "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='default' volume='v.qcow2'/><target dev='vda' bus='virtio'/></disk>",
      ),
    );
    const g = await reader.read([file], {}, ctx(path.dirname(file)));
    expect(g.notes).toEqual([
      'cd-rom hdc: /nonexistent/v2v/a.iso does not exist',
      'disk vda: storage volume "v.qcow2" in pool "default" is not resolved from an XML file',
    ]);
  });

  it('a ../ disk path pointing at a canary is only looked at, never read or written', async () => {
    const root = await tempRoot();
    await fs.mkdir(path.join(root, 'xml'));
    await fs.writeFile(path.join(root, 'canary'), 'canary\n');
    const file = path.join(root, 'xml/guest.xml');
    await fs.writeFile(
      file,
      domainXml(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='../canary'/><target dev='vda' bus='virtio'/></disk>",
      ),
    );
    const before = await fs.readdir(root);
    const g = await reader.read([file], {}, ctx(root));
    expect(g.disks[0]?.path).toBe(path.join(root, 'canary'));
    expect(await fs.readFile(path.join(root, 'canary'), 'utf8')).toBe('canary\n');
    expect(await fs.readdir(root)).toEqual(before);
  });
});

describe('libvirtxml reader: hostile and broken input', () => {
  let root: string;
  let canary: string;
  beforeAll(async () => {
    root = await tempRoot();
    canary = path.join(root, 'canary');
    await fs.writeFile(canary, 'SECRET-CANARY\n');
  });

  it('refuses an external entity (XXE) without reading it', async () => {
    const file = await writeXml(
      `<?xml version="1.0"?>\n<!DOCTYPE domain [\n  <!ENTITY xxe SYSTEM "file://${canary}">\n]>\n` +
        domainXml().replace('<name>t</name>', '<name>&xxe;</name>'),
    );
    const err = await readError(file);
    expect(err.message).toContain(file);
    expect(err.message).toContain('entity declarations are not accepted');
    expect(err.line).toBe(2);
    expect(err.message).not.toContain('SECRET-CANARY');
    expect(await fs.readFile(canary, 'utf8')).toBe('SECRET-CANARY\n');
  });

  it('refuses an entity expansion bomb', async () => {
    const lol = Array.from(
      { length: 9 },
      (_, i) => `  <!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`,
    ).join('\n');
    const file = await writeXml(
      `<?xml version="1.0"?>\n<!DOCTYPE domain [\n  <!ENTITY lol0 "lol">\n${lol}\n]>\n` +
        domainXml().replace('<name>t</name>', '<name>&lol9;</name>'),
    );
    const err = await readError(file);
    expect(err.message).toMatch(new RegExp(`^${file}:2: XML entity declarations are not accepted`));
  });

  it('malformed XML: the error has the line', async () => {
    const file = await writeXml(domainXml().replace('<name>t</name>', '<name>t</nam>'));
    const err = await readError(file);
    expect(err.line).toBe(2);
    expect(err.message).toMatch(new RegExp(`^${file}:2: malformed XML`));
  });

  it.each([
    ["<memory unit='EiB'>16</memory>", 'memoryBytes: memory above 16 TiB'],
    [`<memory>${'1'.padEnd(31, '0')}</memory>`, 'memoryBytes: memory above 16 TiB'],
    ["<memory unit='MiB'>512</memory><vcpu>-4</vcpu>", 'vcpus:'],
    ["<memory unit='MiB'>512</memory><vcpu>0</vcpu>", 'vcpus:'],
    ["<memory unit='KiB'>512</memory>", 'memory below 1 MiB'],
  ])('absurd numbers fail validation: %s', async (head, problem) => {
    const err = await readError(await writeXml(domainXml('', head)));
    expect(err.message).toContain('invalid guest description');
    expect(err.message).toContain(problem);
  });

  it.each([
    ["<memory unit='ZiB'>1</memory>", '<memory unit="ZiB">: not a unit libvirt knows'],
    ["<memory unit='MiB'>1.5e3</memory>", '<memory> "1.5e3" is not a whole number'],
    [`<memory>${'9'.repeat(100)}</memory>`, '<memory> has 100 digits: absurdly large'],
    ["<memory unit='MiB'>512</memory><vcpu>two</vcpu>", '<vcpu> "two" is not a whole number'],
    ['<vcpu>1</vcpu>', 'no <memory> element'],
  ])('bad numbers are errors naming the element: %s', async (head, problem) => {
    const file = await writeXml(domainXml('', head));
    expect((await readError(file)).message).toBe(`${file}: ${problem}`);
  });

  it('a <__proto__> element is refused, naming the file', async () => {
    const file = await writeXml(domainXml('<__proto__><polluted>1</polluted></__proto__>'));
    expect((await readError(file)).message).toMatch(
      new RegExp(`^${file}: XML refused: .*__proto__.*prototype pollution`),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('not a <domain>: a libvirt network XML', async () => {
    const file = await writeXml(
      "<network>\n  <name>default</name>\n  <forward mode='nat'/>\n  <bridge name='virbr0'/>\n</network>\n",
      'default-network.xml',
    );
    expect((await readError(file)).message).toBe(
      `${file}: the root element is <network>, expected a libvirt <domain>`,
    );
  });

  it('a <domain> without name or type', async () => {
    const noName = await writeXml(domainXml().replace('<name>t</name>', ''));
    expect((await readError(noName)).message).toBe(`${noName}: <domain> has no <name>`);
    const noType = await writeXml(domainXml().replace(" type='kvm'", ''));
    expect((await readError(noType)).message).toBe(`${noType}: <domain> has no type attribute`);
  });

  it('an empty file', async () => {
    const file = await writeXml('');
    expect((await readError(file)).message).toBe(`${file}: empty file, expected XML`);
  });

  it('binary garbage', async () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 256;
    const file = await writeXml(bytes, 'garbage.xml');
    expect((await readError(file)).message).toBe(`${file}: binary data, expected XML`);
  });

  it('text that is not XML', async () => {
    const file = await writeXml('name = "guest"\nmemsize = "1024"\n', 'guest.vmx');
    expect((await readError(file)).message).toMatch(new RegExp(`^${file}:1: malformed XML`));
  });

  it('a missing file and a directory', async () => {
    const missing = path.join(root, 'nope.xml');
    expect((await readError(missing)).message).toBe(`${missing}: no such file`);
    expect((await readError(root)).message).toBe(`${root}: is a directory, expected XML`);
  });

  it('check: exactly one file', () => {
    expect(() => reader.check([], {})).toThrow(UsageError);
    expect(() => reader.check(['a.xml', 'b.xml'], {})).toThrow(/exactly one/);
  });
});

// ---------------------------------------------------------------------------------------------

interface FakeCall {
  argv: readonly string[];
}

/** A node answering virsh from a table, with a set of existing files. */
function fakeNode(
  answer: (argv: readonly string[]) => { exitCode: number; stdout?: string; stderr?: string },
  files: Set<string>,
  calls: FakeCall[],
): Node {
  const node: Pick<Node, 'name' | 'isLocal' | 'run' | 'stat'> = {
    name: 'ssh://root@192.0.2.7:22',
    isLocal: false,
    async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
      calls.push({ argv });
      // virsh runs in the C locale (libvirt's messages in English for the error predicates).
      expect(options?.env).toMatchObject({ LC_ALL: 'C' });
      const a = answer(argv);
      const stdout = a.stdout ?? '';
      const result: RunResult = {
        argv,
        node: 'ssh://root@192.0.2.7:22',
        exitCode: a.exitCode,
        signal: undefined,
        stdout,
        stderr: a.stderr ?? '',
        durationMs: 1,
        timedOut: false,
        aborted: false,
        stdoutBytes: Buffer.from(stdout),
      };
      // As a real node: a failure is a CommandError unless the caller asked for reject: false.
      if (a.exitCode !== 0 && options?.reject !== false) throw new CommandError(result);
      return result;
    },
    async stat(p: string): Promise<FileStat | undefined> {
      return files.has(p)
        ? { type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }
        : undefined;
    },
  };
  return node as Node;
}

describe('libvirt reader (fake node)', () => {
  const live = new LibvirtReader();
  const xml = domainXml(
    "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='p-1' volume='-v.qcow2'/><target dev='vda' bus='virtio'/></disk>" +
      "<disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='gone' volume='x'/><target dev='vdb' bus='virtio'/></disk>" +
      "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/present.img'/><target dev='vdc' bus='virtio'/></disk>" +
      "<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg/missing'/><target dev='vdd' bus='virtio'/></disk>",
  );

  it('runs virsh with an argv, resolves volumes, notes missing disks', async () => {
    const calls: FakeCall[] = [];
    const node = fakeNode(
      (argv) => {
        if (argv[3] === 'dumpxml') return { exitCode: 0, stdout: xml };
        if (argv.includes('p-1')) return { exitCode: 0, stdout: '/pools/p-1/-v.qcow2\n' };
        return { exitCode: 1, stderr: "error: failed to get pool 'gone'\n" };
      },
      new Set(['/present.img']),
      calls,
    );
    const g = await live.read(['web 01'], { connect: 'qemu+ssh://h/system' }, ctx('/tmp', node));
    expect(calls.map((c) => c.argv)).toEqual([
      ['virsh', '-c', 'qemu+ssh://h/system', 'dumpxml', '--inactive', '--', 'web 01'],
      ['virsh', '-c', 'qemu+ssh://h/system', 'vol-path', '--pool', 'p-1', '--', '-v.qcow2'],
      ['virsh', '-c', 'qemu+ssh://h/system', 'vol-path', '--pool', 'gone', '--', 'x'],
    ]);
    expect(g.origin).toEqual({ kind: 'libvirt', source: 'web 01' });
    expect(g.disks.map((d) => d.path)).toEqual([
      '/pools/p-1/-v.qcow2',
      'gone/x',
      '/present.img',
      '/dev/vg/missing',
    ]);
    expect(g.notes).toEqual([
      `disk vdb: storage volume "x" in pool "gone" not found: failed to get pool 'gone'`,
      'disk vdd: /dev/vg/missing does not exist',
    ]);
  });

  it('an unknown domain: the error names the domain and the URI', async () => {
    const node = fakeNode(
      () => ({
        exitCode: 1,
        stderr:
          "error: failed to get domain 'nosuch'\nerror: Domain not found: no domain with matching name 'nosuch'\n",
      }),
      new Set(),
      [],
    );
    const err = await live.read(['nosuch'], {}, ctx('/tmp', node)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect((err as Error).message).toContain('libvirt domain "nosuch" (qemu:///system on ssh://');
    expect((err as Error).message).toContain('no such domain');
  });

  it('broken XML from virsh names the domain', async () => {
    const node = fakeNode(() => ({ exitCode: 0, stdout: '<domain' }), new Set(), []);
    const err = await live.read(['d'], {}, ctx('/tmp', node)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /^libvirt domain "d" \(qemu:\/\/\/system on .*malformed/,
    );
  });

  it('check: one name, a URI', () => {
    expect(() => live.check([], {})).toThrow(/exactly one domain name/);
    expect(() => live.check(['a\nb'], {})).toThrow(/control characters/);
    expect(() => live.check(['a'], { connect: 'not a uri' })).toThrow(/not a libvirt URI/);
    expect(() => live.check(['a'], { connect: 'xen+ssh://root@xenhost/' })).not.toThrow();
  });
});
