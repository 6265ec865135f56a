import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataError, UsageError } from '../../src/errors.js';
import { DiskReader } from '../../src/metadata/disk/disk-reader.js';
import type { ReaderContext } from '../../src/metadata/reader.js';
import { guessKind } from '../../src/metadata/registry.js';
import { LocalNode } from '../../src/node/local-node.js';
import { expectGolden } from '../harness/golden.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/metadata/disk');
let dir: string;
let ctx: ReaderContext;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-disk-'));
  ctx = {
    node: new LocalNode(),
    log: { debug() {}, info() {}, warn() {}, error() {} },
    tmpDir: dir,
  };
  await fs.writeFile(path.join(dir, 'web01-root.qcow2'), 'not really qcow2');
  await fs.writeFile(path.join(dir, 'web01-data.img'), '');
  await fs.writeFile(path.join(dir, 'blob.bin'), '');
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('-i disk (command line reader)', () => {
  it('reads bare disks with --name, --memory, --vcpus, --network (golden)', async () => {
    const guest = await new DiskReader().read(
      [path.join(dir, 'web01-root.qcow2'), path.join(dir, 'web01-data.img')],
      { name: 'web01', memoryBytes: 2 * 1024 ** 3, vcpus: 2, networks: ['default', 'dmz'] },
      ctx,
    );
    await expectGolden(guest, path.join(GOLDEN, 'two-disks.args'), dir);
  });

  it('defaults: name from the first disk, 1 GiB, 1 vCPU, no NIC', async () => {
    const guest = await new DiskReader().read([path.join(dir, 'web01-root.qcow2')], {}, ctx);
    expect(guest).toMatchObject({ name: 'web01-root', memoryBytes: 1024 ** 3, vcpus: 1, nics: [] });
  });

  it('needs a format it can tell from the name, or --disk-format', async () => {
    const blob = path.join(dir, 'blob.bin');
    expect(() => new DiskReader().check([blob], {})).toThrow(
      `disk '${blob}': cannot tell its format from the name`,
    );
    const g = await new DiskReader().read([blob], { diskFormat: 'raw' }, ctx);
    expect(g.disks[0]?.format).toBe('raw');
    expect(() => new DiskReader().check([blob], { diskFormat: 'ext4' })).toThrow(
      /--disk-format 'ext4'/,
    );
  });

  it('refuses a missing disk and absurd numbers, naming the input', async () => {
    const missing = path.join(dir, 'missing.qcow2');
    await expect(new DiskReader().read([missing], {}, ctx)).rejects.toThrow(
      new MetadataError(missing, 'no such disk image on local'),
    );
    expect(() => new DiskReader().check([missing], { vcpus: -1 })).toThrow(/--vcpus '-1'/);
    await expect(
      new DiskReader().read([path.join(dir, 'web01-root.qcow2')], { memoryBytes: 1e30 }, ctx),
    ).rejects.toThrow(/memoryBytes: memory above 16 TiB/);
  });
});

describe('guessing the input kind', () => {
  it.each([
    [['guest.vmx'], 'vmx'],
    [['/x/appliance.OVA'], 'ova'],
    [['export/vm.ovf'], 'ovf'],
    [['dom.xml'], 'libvirtxml'],
    [['web01'], 'libvirt'],
    [['a.qcow2', 'b.vmdk'], 'disk'],
    [['root.img'], 'disk'],
  ])('%j is %s', (source, kind) => {
    expect(guessKind(source)).toBe(kind);
  });

  it('asks for -i when it cannot tell', () => {
    expect(() => guessKind(['notes.txt'])).toThrow(
      /cannot tell what kind of source 'notes.txt' is/,
    );
    expect(() => guessKind([])).toThrow(UsageError);
  });
});
