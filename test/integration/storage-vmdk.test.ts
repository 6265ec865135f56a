/**
 * VMDK layouts made by the real qemu-img (and an ESXi vmfs descriptor written by hand over a
 * flat extent), read through their descriptor on the local and the SSH node; broken ones give
 * clear errors.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/node/node.js';
import { StorageError } from '../../src/storage/errors.js';
import { QemuImg } from '../../src/storage/qemu-img.js';
import { readVmdk } from '../../src/storage/vmdk.js';
import {
  canary,
  NODE_KINDS,
  names,
  nodeOf,
  qemuImg,
  randomRaw,
  sameData,
  sha256File,
  tempDir,
  writePattern,
} from './storage-helpers.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const VMFS_DESCRIPTOR = `# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=5a1b2c3d
parentCID=ffffffff
createType="vmfs"

# Extent description
RW 8192 VMFS "esx-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "4"
ddb.geometry.heads = "64"
ddb.geometry.sectors = "32"
ddb.longContentID = "6a4a2b6f1f0f8e1e5a1b2c3dfffffffe"
ddb.thinProvisioned = "1"
ddb.uuid = "60 00 C2 9b 1d 5e 7a 02-6c 45 9f 0d 3e 21 a8 11"
ddb.virtualHWVersion = "14"
`;

/** subformat, virtual size, expected extent count, expected file suffixes */
const SUBFORMATS = [
  ['monolithicSparse', 4 * MiB, 1, ['']],
  ['streamOptimized', 4 * MiB, 1, ['']],
  ['monolithicFlat', 4 * MiB, 1, ['', '-flat']],
  ['twoGbMaxExtentSparse', 2 * GiB + 4 * MiB, 2, ['', '-s001', '-s002']],
] as const;

describe.each(NODE_KINDS)('VMDK subformats on the %s node', (kind) => {
  let node: Node;
  let root: string;
  let q: QemuImg;
  let src: string;

  beforeAll(async () => {
    node = await nodeOf(kind);
    root = await tempDir(`vmdk-${kind}`);
    q = new QemuImg(node, [root]);
    src = path.join(root, 'src.raw');
    await randomRaw(src, 4, 2);
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it.each(SUBFORMATS)(
    '%s: descriptor, extents, info, convert',
    async (sub, size, count, suffixes) => {
      const dir = path.join(root, sub);
      await fs.mkdir(dir);
      const file = path.join(dir, `disk.vmdk`);
      let raw = src;
      if (size !== 4 * MiB) {
        raw = path.join(dir, 'big.raw');
        await fs.copyFile(src, raw);
        await fs.truncate(raw, size);
        await writePattern(raw, 'raw', 2 * GiB + MiB, 65536, 0x5a);
      }
      await qemuImg(['convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}`, raw, file]);
      if (raw !== src) await fs.rm(raw);
      const layout = await readVmdk(node, file);
      expect(layout.subformat).toBe(sub);
      expect(layout.extents).toHaveLength(count);
      expect(layout.files).toEqual(suffixes.map((s) => path.join(dir, `disk${s}.vmdk`)));
      expect(layout.embedded).toBe(suffixes.length === 1);
      expect(layout.virtualBytes).toBe(size);
      const info = await q.info({ path: file, format: 'vmdk' });
      expect([info.format, info.virtualBytes]).toEqual(['vmdk', size]);
      const out = { path: path.join(dir, 'out.qcow2'), format: 'qcow2' as const };
      await q.convert({ path: file, format: 'vmdk' }, out);
      if (size === 4 * MiB) expect(await sameData(src, 'raw', out.path, 'qcow2')).toBe(true);
      else
        await qemuImg(
          ['-f', 'qcow2', '-c', `read -P 0x5a ${2 * GiB + MiB} 65536`, out.path],
          'qemu-io',
        );
    },
  );

  it('vmfs: an ESXi descriptor over a flat extent', async () => {
    const dir = path.join(root, 'vmfs');
    await fs.mkdir(dir);
    await fs.copyFile(src, path.join(dir, 'esx-flat.vmdk'));
    await fs.writeFile(path.join(dir, 'esx.vmdk'), VMFS_DESCRIPTOR);
    const layout = await readVmdk(node, path.join(dir, 'esx.vmdk'));
    expect(layout).toMatchObject({ subformat: 'vmfs', embedded: false, virtualBytes: 4 * MiB });
    expect(layout.extents.map((e) => [e.path, e.type, e.sectors, e.line])).toEqual([
      [path.join(dir, 'esx-flat.vmdk'), 'VMFS', 8192, 9],
    ]);
    const out = { path: path.join(dir, 'out.raw'), format: 'raw' as const };
    await q.convert({ path: path.join(dir, 'esx.vmdk'), format: 'vmdk' }, out);
    expect(await sha256File(out.path)).toBe(await sha256File(src));
  });

  describe('broken VMDKs', () => {
    let dir: string;
    beforeAll(async () => {
      dir = path.join(root, 'bad');
      await fs.mkdir(dir);
    });

    it('a missing extent names the descriptor, its line and the file', async () => {
      const d = path.join(dir, 'split.vmdk');
      await qemuImg([
        'create',
        '-q',
        '-f',
        'vmdk',
        '-o',
        'subformat=twoGbMaxExtentSparse',
        d,
        '3G',
      ]);
      await fs.rm(path.join(dir, 'split-s002.vmdk'));
      const msg = `${d}: extent "split-s002.vmdk" (line 9) is missing: ${path.join(dir, 'split-s002.vmdk')}`;
      await expect(readVmdk(node, d)).rejects.toThrow(msg);
      await expect(q.info({ path: d, format: 'vmdk' })).rejects.toThrow(msg);
      const before = await names(dir);
      await expect(
        q.convert(
          { path: d, format: 'vmdk' },
          { path: path.join(dir, 'x.qcow2'), format: 'qcow2' },
        ),
      ).rejects.toThrow(StorageError);
      expect(await names(dir)).toEqual(before);
    });

    it('a truncated flat extent and a truncated sparse file', async () => {
      const d = path.join(dir, 'flat.vmdk');
      await qemuImg(['create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', d, '4M']);
      await fs.truncate(path.join(dir, 'flat-flat.vmdk'), MiB);
      await expect(readVmdk(node, d)).rejects.toThrow(
        `${d}: extent "flat-flat.vmdk" (line 8) is truncated: 1048576 bytes, the descriptor says 4194304`,
      );
      const s = path.join(dir, 'sparse.vmdk');
      await qemuImg(['convert', '-f', 'raw', '-O', 'vmdk', src, s]);
      await fs.truncate(s, 100);
      await expect(q.info({ path: s, format: 'vmdk' })).rejects.toThrow(
        `${s}: sparse VMDK is truncated: 100 bytes, its header places the descriptor up to byte`,
      );
      const s2 = path.join(dir, 'sparse2.vmdk');
      await qemuImg(['convert', '-f', 'raw', '-O', 'vmdk', src, s2]);
      await fs.truncate(s2, 70_000);
      await expect(
        q.convert({ path: s2, format: 'vmdk' }, { path: path.join(dir, 's2.raw'), format: 'raw' }),
      ).rejects.toThrow(
        `${s2}: damaged or unreadable: qemu-img check failed: ERROR: cluster offset for sector 128 points after EOF`,
      );
    });

    it('garbage, a descriptor without extents, an unknown createType', async () => {
      const g = path.join(dir, 'garbage.vmdk');
      await fs.writeFile(g, Buffer.from([1, 2, 3, 0, 9, 9, 9]));
      await expect(readVmdk(node, g)).rejects.toThrow(
        `${g}: not a VMDK descriptor: binary data at byte 0`,
      );
      const e = path.join(dir, 'empty.vmdk');
      await fs.writeFile(e, '# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\n');
      await expect(readVmdk(node, e)).rejects.toThrow(`${e}: VMDK descriptor lists no extent`);
      const u = path.join(dir, 'odd.vmdk');
      await fs.writeFile(u, 'createType="fullDevice"\nRW 8 FLAT "x"\n');
      await expect(readVmdk(node, u)).rejects.toThrow(
        `${u}: unsupported VMDK createType "fullDevice"`,
      );
      await expect(readVmdk(node, path.join(dir, 'none.vmdk'))).rejects.toThrow(
        'VMDK does not exist',
      );
    });

    it('an extent outside the descriptor directory is refused; the canary is untouched', async () => {
      const c = await canary(root);
      const h = path.join(dir, 'hostile.vmdk');
      const rel = path.relative(dir, c.file);
      await fs.writeFile(h, VMFS_DESCRIPTOR.replace('"esx-flat.vmdk"', `"${rel}"`));
      await expect(readVmdk(node, h)).rejects.toThrow(
        `${h}: extent "${rel}" (line 9) is outside the descriptor's directory; refused`,
      );
      await fs.writeFile(h, VMFS_DESCRIPTOR.replace('"esx-flat.vmdk"', `"${c.file}"`));
      await expect(
        q.convert({ path: h, format: 'vmdk' }, { path: path.join(dir, 'h.raw'), format: 'raw' }),
      ).rejects.toThrow('is outside the descriptor');
      await expect(fs.stat(path.join(dir, 'h.raw'))).rejects.toThrow();
      expect(await sha256File(c.file)).toBe(c.sha);
    });
  });
});
