import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataError, UsageError } from '../../src/errors.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import { checkRelativeName, parseManifest } from '../../src/metadata/ovf/manifest.js';
import { parseOvfDescriptor, unitMultiplier } from '../../src/metadata/ovf/ovf-parse.js';
import { OvfReader } from '../../src/metadata/ovf/ovf-reader.js';
import type { ReaderContext } from '../../src/metadata/reader.js';
import { expectGolden } from '../harness/golden.js';
import { fakeFile, references } from '../harness/ovf-fixtures.js';
import { WatchedNode } from '../harness/watched-node.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/metadata/ovf');
const silent = { debug() {}, info() {}, warn() {}, error() {} };

let root: string;
let node: WatchedNode;
let ctx: ReaderContext;
const reader = new OvfReader();

interface StageOptions {
  /** Edits the OVF text before it is written. */
  edit?: (text: string) => string;
  /** Referenced files not to create. */
  skip?: string[];
  /** Copy the corpus manifest too (default: when there is one). */
  manifest?: boolean;
}

/** Copies a corpus OVF (and its manifest) into a fresh directory and makes its files. */
async function stage(
  name: string,
  options: StageOptions = {},
): Promise<{ dir: string; ovf: string }> {
  const dir = await fs.mkdtemp(path.join(root, 'pkg-'));
  let text = await fs.readFile(path.join(GOLDEN, name), 'utf8');
  if (options.edit) text = options.edit(text);
  const ovf = path.join(dir, name);
  await fs.writeFile(ovf, text);
  const mf = path.join(GOLDEN, name.replace(/\.ovf$/, '.mf'));
  if (options.manifest !== false) {
    await fs.copyFile(mf, path.join(dir, path.basename(mf))).catch(() => undefined);
  }
  for (const r of references(text)) {
    if (options.skip?.includes(r.href)) continue;
    await fs.mkdir(path.dirname(path.join(dir, r.href)), { recursive: true });
    await fs.writeFile(path.join(dir, r.href), fakeFile(r.href, r.size));
  }
  return { dir, ovf };
}

async function read(ovf: string): Promise<SourceGuest> {
  return reader.read([ovf], {}, ctx);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-ovf-'));
  node = new WatchedNode();
  const tmpDir = path.join(root, 'tmp');
  await fs.mkdir(tmpDir);
  ctx = { node, log: silent, tmpDir };
});

afterAll(async () => {
  expect(node.writes).toEqual([]);
  await fs.rm(root, { recursive: true, force: true });
});

describe('manifest', () => {
  it('reads ovftool lines and the spaced form, lower-casing digests', () => {
    const sha1 = 'A'.repeat(40);
    const sha256 = 'b'.repeat(64);
    const entries = parseManifest(
      `SHA1(disk1.vmdk)= ${sha1}\r\nSHA256 (vm.ovf) = ${sha256}\n\n SHA512(./sub/x.iso)=${'c'.repeat(128)}\n`,
      '/p/vm.mf',
    );
    expect(entries).toEqual([
      { algorithm: 'sha1', name: 'disk1.vmdk', digest: 'a'.repeat(40), line: 1 },
      { algorithm: 'sha256', name: 'vm.ovf', digest: sha256, line: 2 },
      { algorithm: 'sha512', name: 'sub/x.iso', digest: 'c'.repeat(128), line: 4 },
    ]);
  });

  it('refuses malformed lines, unsafe names, wrong lengths and duplicates with the line', () => {
    const h = 'a'.repeat(40);
    expect(() => parseManifest(`SHA1(a)= ${h}\nMD5(b)= 0123\n`, '/p/x.mf')).toThrow(
      /^\/p\/x\.mf:2: not a manifest line/,
    );
    expect(() => parseManifest(`SHA1(../canary)= ${h}\n`, '/p/x.mf')).toThrow(
      '/p/x.mf:1: file name "../canary" refused: a name with ".." segments',
    );
    expect(() => parseManifest(`SHA1(/nonexistent/v2v-load-canary)= ${h}\n`, '/p/x.mf')).toThrow(
      /absolute path/,
    );
    expect(() => parseManifest(`SHA256(a)= ${h}\n`, '/p/x.mf')).toThrow(
      '/p/x.mf:1: SHA256 digest of "a" has 40 hex digits, expected 64',
    );
    expect(() => parseManifest(`SHA1(a)= ${h}\nSHA1(./a)= ${h}\n`, '/p/x.mf')).toThrow(
      '/p/x.mf:2: "a" is listed twice',
    );
    expect(() => parseManifest('\0\u0001binary', '/p/x.mf')).toThrow(/binary data/);
  });

  it('checks relative names', () => {
    expect(checkRelativeName('./a//b')).toEqual({ name: 'a/b' });
    expect(checkRelativeName('C:/x')).toEqual({ refused: 'an absolute path' });
    expect(checkRelativeName('a\\..\\b')).toEqual({ refused: 'a name with a backslash' });
    expect(checkRelativeName('.')).toEqual({ refused: 'an empty name' });
  });
});

describe('units', () => {
  it('reads programmatic units and the OVF 1.0 words', () => {
    expect(unitMultiplier('byte * 2^20')).toBe(2 ** 20);
    expect(unitMultiplier('byte*2^30')).toBe(2 ** 30);
    expect(unitMultiplier('byte')).toBe(1);
    expect(unitMultiplier('MegaBytes')).toBe(2 ** 20);
    expect(unitMultiplier('GigaBytes')).toBe(2 ** 30);
    expect(unitMultiplier('byte * 10^9')).toBe(1e9);
    expect(unitMultiplier('hertz * 10^6')).toBeUndefined();
    expect(unitMultiplier('byte * 2^900')).toBeUndefined();
  });
});

describe('OvfReader: corpus (golden)', () => {
  it('ESXi 7 ovftool export: vmw: extensions, lsilogic + pvscsi, vmxnet3, EFI, SHA256 manifest', async () => {
    const { dir, ovf } = await stage('vmware-esxi-export.ovf');
    node.commands.length = 0;
    const guest = await read(ovf);
    await expectGolden(guest, path.join(GOLDEN, 'vmware-esxi-export.ovf'), dir);
    expect(guest.firmware).toBe('uefi');
    expect(guest.cpuTopology).toEqual({ sockets: 2, cores: 2, threads: 1 });
    expect(guest.disks.map((d) => [d.controller, d.controllerIndex, d.unit])).toEqual([
      ['lsilogic', 0, 0],
      ['pvscsi', 1, 0],
    ]);
    expect(guest.disks[0]?.capacityBytes).toBe(40 * 2 ** 30);
    // Every manifest line was checked on the node with the manifest's algorithm.
    expect(node.commands.map((c) => [c[0], path.basename(c[2] ?? '')])).toEqual([
      ['sha256sum', 'vmware-esxi-export.ovf'],
      ['sha256sum', 'rhel8-web01-disk1.vmdk'],
      ['sha256sum', 'rhel8-web01-disk2.vmdk'],
      ['sha256sum', 'rhel8-web01-file1.nvram'],
    ]);
  });

  it('Workstation export: SHA1 manifest, e1000, IDE CD-ROM with its ISO, sound, floppy', async () => {
    const { dir, ovf } = await stage('vmware-workstation.ovf');
    const guest = await read(ovf);
    await expectGolden(guest, path.join(GOLDEN, 'vmware-workstation.ovf'), dir);
    expect(guest.cdroms).toEqual([
      { bus: 'ide', slot: 'ide1:0', path: path.join(dir, 'ubuntu-dev-file1.iso') },
    ]);
    expect(guest.firmware).toBe('bios');
  });

  it('VirtualBox 7 export: vbox:Machine gives firmware, uuid and MAC; SATA AHCI', async () => {
    const { dir, ovf } = await stage('virtualbox.ovf');
    const guest = await read(ovf);
    await expectGolden(guest, path.join(GOLDEN, 'virtualbox.ovf'), dir);
    expect(guest.hypervisor).toBe('unknown');
    expect(guest.notes).toContain('exported by VirtualBox (virtualbox-2.2)');
    expect(guest.nics[0]?.mac).toBe('08:00:27:c3:a1:b2');
    expect(guest.disks[0]?.slot).toBe('ovf:/disk/vmdisk1');
  });

  it('OVF 2.0 envelope with StorageItem and EthernetPortItem', async () => {
    const { dir, ovf } = await stage('ovf2-sample.ovf');
    const guest = await read(ovf);
    await expectGolden(guest, path.join(GOLDEN, 'ovf2-sample.ovf'), dir);
    expect(guest.disks).toHaveLength(1);
    expect(guest.nics.map((n) => [n.model, n.network, n.mac])).toEqual([
      ['e1000', 'Bridged', '08:00:27:6e:5a:10'],
      ['virtio', 'Internal', '08:00:27:d4:e2:f9'],
    ]);
  });

  it('snapshot chain (ovf:parentRef) gives the backing chain, top parent first', async () => {
    const { dir, ovf } = await stage('snapshot-chain.ovf');
    const guest = await read(ovf);
    await expectGolden(guest, path.join(GOLDEN, 'snapshot-chain.ovf'), dir);
    expect(guest.disks[0]?.path).toBe(path.join(dir, 'win2019-delta2.vmdk'));
    expect(guest.disks[0]?.backingChain).toEqual([
      path.join(dir, 'win2019-delta1.vmdk'),
      path.join(dir, 'win2019-base.vmdk'),
    ]);
    expect(guest.disks[1]).toMatchObject({ bus: 'nvme', controller: 'nvme', compression: 'gzip' });
  });

  it('reads a relative path from the current directory', async () => {
    const { ovf } = await stage('virtualbox.ovf');
    const guest = await read(path.relative(process.cwd(), ovf));
    expect(guest.origin.source).toBe(ovf);
  });
});

describe('OvfReader: options and sources', () => {
  it('check() wants one .ovf file', () => {
    expect(() => reader.check([], {})).toThrow(UsageError);
    expect(() => reader.check(['a.ovf', 'b.ovf'], {})).toThrow(/one \.ovf file, got 2/);
    expect(() => reader.check(['vm.ova'], {})).toThrow('vm.ova: expected an .ovf descriptor');
  });

  it('a missing OVF is an error naming it', async () => {
    const e = await failure(read(path.join(root, 'nowhere.ovf')));
    expect(e).toBeInstanceOf(MetadataError);
    expect(e.message).toBe(`${path.join(root, 'nowhere.ovf')}: no such file (the OVF descriptor)`);
  });
});

describe('OvfReader: broken and hostile input', () => {
  it('a referenced disk that is missing names the OVF and the file', async () => {
    const { dir, ovf } = await stage('vmware-esxi-export.ovf', {
      skip: ['rhel8-web01-disk2.vmdk'],
      manifest: false,
    });
    const e = await failure(read(ovf));
    expect(e).toBeInstanceOf(MetadataError);
    expect(e.message).toBe(
      `${ovf}: disk file "rhel8-web01-disk2.vmdk" (File file2) is missing: not found: ${path.join(dir, 'rhel8-web01-disk2.vmdk')}`,
    );
  });

  it('a manifest digest mismatch names the manifest, its line and the file', async () => {
    const { dir, ovf } = await stage('vmware-esxi-export.ovf');
    const disk = path.join(dir, 'rhel8-web01-disk2.vmdk');
    const bytes = await fs.readFile(disk);
    bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
    await fs.writeFile(disk, bytes);
    const e = await failure(read(ovf));
    expect(e.message).toMatch(
      new RegExp(
        `^${path.join(dir, 'vmware-esxi-export.mf').replace(/[.]/g, '\\.')}:3: SHA256 digest mismatch for "rhel8-web01-disk2.vmdk"`,
      ),
    );
  });

  it('a manifest listing a file that is absent is an error naming it', async () => {
    const { dir, ovf } = await stage('vmware-workstation.ovf', { skip: ['ubuntu-dev-file1.iso'] });
    const e = await failure(read(ovf));
    expect(e.message).toBe(
      `${path.join(dir, 'vmware-workstation.mf')}:3: lists "ubuntu-dev-file1.iso", which is not a file next to the OVF (${path.join(dir, 'ubuntu-dev-file1.iso')})`,
    );
  });

  it('an ISO that is missing (no manifest) leaves the drive empty, with a note', async () => {
    const { ovf } = await stage('vmware-workstation.ovf', {
      skip: ['ubuntu-dev-file1.iso'],
      manifest: false,
    });
    const guest = await read(ovf);
    expect(guest.cdroms[0]?.path).toBeUndefined();
    expect(
      guest.notes.some((n) => n.startsWith('ISO "ubuntu-dev-file1.iso" of "cdrom0" is missing')),
    ).toBe(true);
  });

  it('refuses an external entity, leaving the canary alone', async () => {
    const canary = path.join(root, 'canary');
    await fs.writeFile(canary, 'original');
    const { ovf } = await stage('virtualbox.ovf', {
      edit: (t) =>
        t
          .replace(
            '<Envelope ',
            `<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file://${canary}">]>\n<Envelope `,
          )
          .replace('<Description>Ubuntu_64</Description>', '<Description>&xxe;</Description>'),
    });
    const e = await failure(read(ovf));
    expect(e).toBeInstanceOf(MetadataError);
    expect(e.message).toBe(
      `${ovf}:2: XML entity declarations are not accepted (external entities and entity expansion are refused)`,
    );
    expect(await fs.readFile(canary, 'utf8')).toBe('original');
  });

  it('refuses an entity expansion bomb', async () => {
    const lol = [
      '<!ENTITY lol "lol">',
      ...Array.from(
        { length: 9 },
        (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`,
      ),
    ].join('\n');
    const { ovf } = await stage('virtualbox.ovf', {
      edit: (t) =>
        t
          .replace('<Envelope ', `<!DOCTYPE Envelope [\n${lol}\n]>\n<Envelope `)
          .replace('<Description>Ubuntu_64</Description>', '<Description>&lol9;</Description>'),
    });
    const e = await failure(read(ovf));
    expect(e.message).toMatch(
      new RegExp(`^${ovf.replace(/[.]/g, '\\.')}:2: XML entity declarations are not accepted`),
    );
  });

  it.each([
    ['../canary', 'a name with ".." segments is refused'],
    ['sub/../../canary', 'a name with ".." segments is refused'],
    ['ABS_CANARY', 'an absolute path is refused'],
    ['file://ABS_CANARY', 'a URL is refused'],
    ['http://example.com/disk.vmdk', 'a URL is refused'],
  ])('refuses the href %s', async (hrefTemplate, why) => {
    // absolute names point at a canary in the test's own temp dir
    const href = hrefTemplate.replace('ABS_CANARY', path.join(root, 'canary'));
    const { ovf } = await stage('virtualbox.ovf', {
      edit: (t) => t.replace('ovf:href="ubuntu-jammy-disk001.vmdk"', `ovf:href="${href}"`),
      skip: [href],
    });
    const e = await failure(read(ovf));
    expect(e.message).toBe(
      `${ovf}: File file1 has href ${JSON.stringify(href)}: ${why} (only files next to the OVF are read)`,
    );
  });

  it('refuses a disk that is a symbolic link (to a canary)', async () => {
    const canary = path.join(root, 'canary');
    await fs.writeFile(canary, 'original');
    const { dir, ovf } = await stage('virtualbox.ovf', { skip: ['ubuntu-jammy-disk001.vmdk'] });
    await fs.symlink(canary, path.join(dir, 'ubuntu-jammy-disk001.vmdk'));
    const e = await failure(read(ovf));
    expect(e.message).toBe(
      `${ovf}: "ubuntu-jammy-disk001.vmdk" (${path.join(dir, 'ubuntu-jammy-disk001.vmdk')}) is a symbolic link: only regular files next to the OVF are read`,
    );
    expect(await fs.readFile(canary, 'utf8')).toBe('original');
  });

  it('absurd numbers fail validation, naming the file', async () => {
    const huge = await stage('vmware-workstation.ovf', {
      manifest: false,
      edit: (t) =>
        t.replace(
          '<rasd:VirtualQuantity>4096</rasd:VirtualQuantity>',
          `<rasd:VirtualQuantity>1${'0'.repeat(30)}</rasd:VirtualQuantity>`,
        ),
    });
    const e1 = await failure(read(huge.ovf));
    expect(e1).toBeInstanceOf(MetadataError);
    expect(e1.message).toMatch(
      new RegExp(`^${huge.ovf.replace(/[.]/g, '\\.')}: invalid guest description: memoryBytes: `),
    );
    const negative = await stage('vmware-workstation.ovf', {
      manifest: false,
      edit: (t) =>
        t.replace(
          '<rasd:VirtualQuantity>2</rasd:VirtualQuantity>',
          '<rasd:VirtualQuantity>-1</rasd:VirtualQuantity>',
        ),
    });
    const e2 = await failure(read(negative.ovf));
    expect(e2.message).toMatch(/invalid guest description: vcpus: .*\(got -1\)/);
    const words = await stage('vmware-workstation.ovf', {
      manifest: false,
      edit: (t) =>
        t.replace(
          '<rasd:VirtualQuantity>2</rasd:VirtualQuantity>',
          '<rasd:VirtualQuantity>two</rasd:VirtualQuantity>',
        ),
    });
    expect((await failure(read(words.ovf))).message).toBe(
      `${words.ovf}: "2 virtual CPU(s)" VirtualQuantity "two" is not a whole number`,
    );
  });

  it('binary garbage, an empty file and a non-OVF XML are errors naming the file', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'bad-'));
    const garbage = path.join(dir, 'garbage.ovf');
    await fs.writeFile(garbage, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 0xff, 0xfe]));
    expect((await failure(read(garbage))).message).toBe(`${garbage}: binary data, expected XML`);
    const empty = path.join(dir, 'empty.ovf');
    await fs.writeFile(empty, '');
    expect((await failure(read(empty))).message).toBe(`${empty}: empty file, expected XML`);
    const notOvf = path.join(dir, 'domain.ovf');
    await fs.writeFile(notOvf, '<domain type="kvm"><name>x</name></domain>');
    expect((await failure(read(notOvf))).message).toBe(
      `${notOvf}: not an OVF descriptor: the root element is not an <Envelope>`,
    );
    const wrongNs = path.join(dir, 'wrong.ovf');
    await fs.writeFile(
      wrongNs,
      '<Envelope xmlns="http://example.com/ovf"><VirtualSystem/></Envelope>',
    );
    expect((await failure(read(wrongNs))).message).toBe(
      `${wrongNs}: not an OVF 1.x or 2.x descriptor: the Envelope's namespace is "http://example.com/ovf"`,
    );
    const truncated = path.join(dir, 'truncated.ovf');
    const text = await fs.readFile(path.join(GOLDEN, 'virtualbox.ovf'), 'utf8');
    await fs.writeFile(truncated, text.slice(0, 3000));
    expect((await failure(read(truncated))).message).toMatch(
      new RegExp(`^${truncated.replace(/[.]/g, '\\.')}:\\d+: malformed XML`),
    );
  });

  it('structural errors: no or two VirtualSystems, dangling ids, chunked files', () => {
    const env = (body: string) =>
      `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">${body}</Envelope>`;
    expect(() => parseOvfDescriptor(env(''), 'x.ovf')).toThrow(
      'x.ovf: no VirtualSystem in the descriptor',
    );
    expect(() =>
      parseOvfDescriptor(
        env(
          '<VirtualSystemCollection><VirtualSystem ovf:id="a"/><VirtualSystem ovf:id="b"/></VirtualSystemCollection>',
        ),
        'x.ovf',
      ),
    ).toThrow('x.ovf: 2 VirtualSystems in the descriptor: only one guest per OVF is supported');
    expect(() =>
      parseOvfDescriptor(
        env(
          '<DiskSection><Disk ovf:diskId="d1" ovf:fileRef="nope" ovf:capacity="1"/></DiskSection><VirtualSystem ovf:id="a"/>',
        ),
        'x.ovf',
      ),
    ).toThrow('x.ovf: Disk d1 refers to File "nope", which is not in the References');
    expect(() =>
      parseOvfDescriptor(
        env(
          '<References><File ovf:id="f" ovf:href="d.vmdk" ovf:chunkSize="1024"/></References><VirtualSystem ovf:id="a"/>',
        ),
        'x.ovf',
      ),
    ).toThrow(/File f \("d.vmdk"\) is split in chunks/);
    expect(() =>
      parseOvfDescriptor(
        env(
          '<References><File ovf:id="f" ovf:href="d.vmdk" ovf:compression="bzip2"/></References><VirtualSystem ovf:id="a"/>',
        ),
        'x.ovf',
      ),
    ).toThrow('x.ovf: File f has unknown ovf:compression "bzip2"');
  });

  it('a parentRef loop, a missing CPU item and a disk id not in the DiskSection are errors', async () => {
    const loop = await stage('snapshot-chain.ovf', {
      edit: (t) =>
        t.replace(
          'ovf:diskId="sys-base" ovf:fileRef="base"',
          'ovf:diskId="sys-base" ovf:parentRef="sys-delta2" ovf:fileRef="base"',
        ),
    });
    expect((await failure(read(loop.ovf))).message).toBe(
      `${loop.ovf}: disk "sys-delta2": the parentRef chain loops at "sys-delta2"`,
    );
    const noCpu = await stage('snapshot-chain.ovf', {
      edit: (t) =>
        t.replace(
          '<rasd:ResourceType>3</rasd:ResourceType>',
          '<rasd:ResourceType>99</rasd:ResourceType>',
        ),
    });
    expect((await failure(read(noCpu.ovf))).message).toBe(
      `${noCpu.ovf}: no CPU item (ResourceType 3) in the VirtualHardwareSection`,
    );
    const dangling = await stage('snapshot-chain.ovf', {
      edit: (t) => t.replace('ovf:/disk/data', 'ovf:/disk/nothing'),
    });
    expect((await failure(read(dangling.ovf))).message).toBe(
      `${dangling.ovf}: "Hard disk 2" refers to disk "nothing", which is not in the DiskSection`,
    );
  });

  it('reads the default deployment option only', async () => {
    const { ovf } = await stage('snapshot-chain.ovf', {
      edit: (t) =>
        t
          .replace(
            '<ovf:NetworkSection>',
            '<ovf:DeploymentOptionSection><ovf:Info>Sizes</ovf:Info><ovf:Configuration ovf:id="small"><ovf:Label>Small</ovf:Label></ovf:Configuration><ovf:Configuration ovf:id="large" ovf:default="true"><ovf:Label>Large</ovf:Label></ovf:Configuration></ovf:DeploymentOptionSection>\n  <ovf:NetworkSection>',
          )
          .replace(
            '<ovf:Item>\n        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>',
            '<ovf:Item ovf:configuration="large">\n        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>\n        <rasd:InstanceID>101</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>16</rasd:VirtualQuantity>\n      </ovf:Item>\n      <ovf:Item ovf:configuration="small">\n        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>',
          ),
    });
    const guest = await read(ovf);
    expect(guest.vcpus).toBe(16);
    expect(guest.notes).toContain('deployment options small, large: the default "large" is read');
  });
});

describe('the OVF corpus says where its files came from', () => {
  const OVA = path.join(GOLDEN, '../ova');
  const corpus = async () => [
    ...(await fs.readdir(GOLDEN))
      .filter((n) => n.endsWith('.ovf'))
      .map((n) => path.join(GOLDEN, n)),
    ...(await fs.readdir(OVA)).filter((n) => n.endsWith('.ovf')).map((n) => path.join(OVA, n)),
  ];

  it('its README names every corpus OVF and says they were written for these tests', async () => {
    const readme = await fs.readFile(path.join(GOLDEN, 'README.md'), 'utf8');
    expect(readme).toMatch(/written by hand for these tests/);
    expect(readme).toMatch(/The manifests hash those stand-in bytes/);
    const named = [...readme.matchAll(/^\| `([^`]+\.ovf)` \|/gm)].map((m) =>
      path.resolve(GOLDEN, m[1] as string),
    );
    expect(named.sort()).toEqual((await corpus()).sort());
  });

  it('every corpus manifest holds the digests of its OVF and of the stand-in bytes', async () => {
    const { createHash } = await import('node:crypto');
    for (const ovf of await corpus()) {
      const mf = ovf.replace(/\.ovf$/, '.mf');
      const text = await fs.readFile(mf, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      const ovfBytes = await fs.readFile(ovf);
      const sizes = new Map(references(ovfBytes.toString()).map((r) => [r.href, r.size]));
      const entries = parseManifest(text, mf);
      expect(entries.map((e) => e.name).sort()).toEqual(
        [path.basename(ovf), ...sizes.keys()].sort(),
      );
      for (const e of entries) {
        const bytes =
          e.name === path.basename(ovf) ? ovfBytes : fakeFile(e.name, sizes.get(e.name) ?? 4096);
        expect(createHash(e.algorithm).update(bytes).digest('hex'), `${mf}: ${e.name}`).toBe(
          e.digest,
        );
      }
    }
  });
});
