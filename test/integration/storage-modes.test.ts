/**
 * The four storage modes with the real qemu-img on the local and the SSH node: the source's
 * bytes unchanged by copy and snapshot (sha256), atomic outputs, cleanup on failure, and the
 * free-space check against `qemu-img measure` on a tiny tmpfs.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node, RenameOptions } from '../../src/node/node.js';
import { NoSpaceError, StorageError, TargetAppearedError } from '../../src/storage/errors.js';
import type { ImageRef } from '../../src/storage/image-format.js';
import {
  CopyMode,
  CowMode,
  InPlaceMode,
  runMode,
  SnapshotMode,
  storageMode,
} from '../../src/storage/modes/index.js';
import { QemuImg } from '../../src/storage/qemu-img.js';
import {
  NODE_KINDS,
  names,
  nodeOf,
  qemuImg,
  randomRaw,
  sameData,
  sha256File,
  tempDir,
  wrapNode,
  writePattern,
} from './storage-helpers.js';

const exec = promisify(execFile);
const MiB = 1024 * 1024;

describe.each(NODE_KINDS)('storage modes on the %s node', (kind) => {
  let node: Node;
  let root: string;
  let srcDir: string;
  let out: string;
  let q: QemuImg;
  let source: ImageRef;
  let sourceSha: string;
  let tiny: string | undefined;

  beforeAll(async () => {
    node = await nodeOf(kind);
    root = await tempDir(`modes-${kind}`);
    srcDir = path.join(root, 'src');
    out = path.join(root, 'out');
    await fs.mkdir(srcDir);
    await fs.mkdir(out);
    q = new QemuImg(node, []);
    source = { path: path.join(srcDir, 'guest.raw'), format: 'raw' };
    await randomRaw(source.path, 8, 3);
    sourceSha = await sha256File(source.path);
  });
  afterAll(async () => {
    if (tiny) await exec('umount', [tiny]).catch(() => {});
    await fs.rm(root, { recursive: true, force: true });
  });

  it('copy: converts under a temporary name, renames at the end; source unchanged', async () => {
    const target: ImageRef = { path: path.join(out, 'copy.qcow2'), format: 'qcow2' };
    const events: number[] = [];
    const disk = await new CopyMode().prepare(q, {
      source,
      target,
      onProgress: (e) => events.push(e.percent),
    });
    expect(path.dirname(disk.work.path)).toBe(out);
    expect(path.basename(disk.work.path)).toMatch(/^\.copy\.qcow2\.tmp-/);
    expect(await names(out)).toEqual([path.basename(disk.work.path)]);
    await writePattern(disk.work.path, 'qcow2', 7 * MiB, 65536, 0x77); // the conversion's write
    expect(await disk.finish()).toEqual(target);
    expect(await names(out)).toEqual(['copy.qcow2']);
    expect(events.at(-1)).toBe(100);
    expect(await sha256File(source.path)).toBe(sourceSha);
    await qemuImg(['-f', 'qcow2', '-c', `read -P 0x77 ${7 * MiB} 65536`, target.path], 'qemu-io');
    await expect(runMode(new CopyMode(), q, { source, target })).rejects.toThrow(
      `${target.path}: target exists already; not overwritten`,
    );
  });

  it('copy: a failed conversion or a failed step leaves nothing behind', async () => {
    const bad = path.join(srcDir, 'bad.qcow2');
    await fs.writeFile(bad, 'QFI\xfb garbage that is no qcow2 header', 'latin1');
    const target: ImageRef = { path: path.join(out, 'fail.qcow2'), format: 'qcow2' };
    await expect(
      runMode(new CopyMode(), q, { source: { path: bad, format: 'qcow2' }, target }),
    ).rejects.toThrow(`${bad}: qemu-img`);
    await expect(
      runMode(new CopyMode(), q, { source, target }, async () => {
        throw new StorageError(target.path, 'conversion failed');
      }),
    ).rejects.toThrow('conversion failed');
    expect(await names(out)).toEqual(['copy.qcow2']);
  });

  it('snapshot: an overlay over the source; flattened output; source bytes unchanged', async () => {
    const target: ImageRef = { path: path.join(out, 'flat.raw'), format: 'raw' };
    const result = await runMode(
      new SnapshotMode('flatten'),
      q,
      { source, target },
      async (work) => {
        expect(work.format).toBe('qcow2');
        const info = await q.allowing(srcDir).info(work);
        expect([info.backingFilename, info.backingFormat]).toEqual([source.path, 'raw']);
        await writePattern(work.path, 'qcow2', 0, 65536, 0x42);
      },
    );
    expect(result).toEqual(target);
    expect(await sha256File(source.path)).toBe(sourceSha);
    await qemuImg(['-f', 'raw', '-c', 'read -P 0x42 0 65536', target.path], 'qemu-io');
    expect((await q.info(target)).backingFilename).toBeUndefined();
    expect(await names(out)).toEqual(['copy.qcow2', 'flat.raw']);
  });

  it('snapshot: or the overlay itself as output', async () => {
    const target: ImageRef = { path: path.join(out, 'overlay.qcow2'), format: 'qcow2' };
    await runMode(new SnapshotMode('overlay'), q, { source, target }, (work) =>
      writePattern(work.path, 'qcow2', MiB, 65536, 0x43),
    );
    expect(await sha256File(source.path)).toBe(sourceSha);
    const chain = await q.allowing(srcDir).infoChain(target);
    expect(chain.map((c) => c.path)).toEqual([target.path, source.path]);
    await expect(
      runMode(new SnapshotMode('overlay'), q, {
        source,
        target: { path: path.join(out, 'x.raw'), format: 'raw' },
      }),
    ).rejects.toThrow('target format must be qcow2');
  });

  it('snapshot: a failed conversion removes the overlay; source unchanged', async () => {
    const target: ImageRef = { path: path.join(out, 'never.qcow2'), format: 'qcow2' };
    await expect(
      runMode(new SnapshotMode(), q, { source, target }, async (work) => {
        await writePattern(work.path, 'qcow2', 0, 65536, 0x44);
        throw new StorageError(work.path, 'guest conversion failed');
      }),
    ).rejects.toThrow('guest conversion failed');
    expect(await names(out)).toEqual(['copy.qcow2', 'flat.raw', 'overlay.qcow2']);
    expect(await sha256File(source.path)).toBe(sourceSha);
  });

  it('in-place: refused unless asked explicitly; then the source is the work image', async () => {
    const own: ImageRef = { path: path.join(srcDir, 'inplace.raw'), format: 'raw' };
    await randomRaw(own.path, 1);
    await expect(runMode(storageMode('in-place'), q, { source: own, target: own })).rejects.toThrow(
      `${own.path}: in-place mode writes the source: it must be asked for explicitly`,
    );
    const before = await sha256File(own.path);
    const res = await runMode(
      new InPlaceMode({ explicit: true }),
      q,
      { source: own, target: own },
      async (w) => {
        expect(w).toEqual(own);
        await writePattern(w.path, 'raw', 0, 4096, 0x45);
      },
    );
    expect(res).toEqual(own);
    expect(await sha256File(own.path)).not.toBe(before);
  });

  it('cow: an overlay over a master with -b and -F; the master is only read', async () => {
    const master: ImageRef = { path: path.join(srcDir, 'master.qcow2'), format: 'qcow2' };
    await qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', source.path, master.path]);
    const masterSha = await sha256File(master.path);
    const target: ImageRef = { path: path.join(out, 'vclv99-37_234-v23.qcow2'), format: 'qcow2' };
    await runMode(new CowMode(), q, { source: master, target }, (w) =>
      writePattern(w.path, 'qcow2', 0, 65536, 0x46),
    );
    const info = await q.allowing(srcDir).info(target);
    expect([info.backingFilename, info.backingFormat, info.virtualBytes]).toEqual([
      master.path,
      'qcow2',
      8 * MiB,
    ]);
    expect(await sha256File(master.path)).toBe(masterSha);
    expect(await sameData(source.path, 'raw', master.path, 'qcow2')).toBe(true);
    const missing: ImageRef = { path: path.join(srcDir, 'nomaster.qcow2'), format: 'qcow2' };
    await expect(
      runMode(new CowMode(), q, {
        source: missing,
        target: { path: path.join(out, 'c2.qcow2'), format: 'qcow2' },
      }),
    ).rejects.toThrow(`${missing.path}: qemu-img info failed`);
    await expect(
      runMode(new CowMode(), q, {
        source: master,
        target: { path: path.join(out, 'c3.raw'), format: 'raw' },
      }),
    ).rejects.toThrow('a copy-on-write image must be qcow2');
    expect(await names(out)).toEqual([
      'copy.qcow2',
      'flat.raw',
      'overlay.qcow2',
      'vclv99-37_234-v23.qcow2',
    ]);
  });

  it('a target another process makes during the run is never replaced (every mode)', async () => {
    const dir = path.join(root, 'race');
    await fs.mkdir(dir);
    const master: ImageRef = { path: path.join(srcDir, 'race-master.qcow2'), format: 'qcow2' };
    await qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', source.path, master.path]);
    // The target is absent when the run begins; someone else makes it just before the output
    // is moved onto its name.
    let theirs = '';
    const racy = wrapNode(node, {
      rename: async (from: string, to: string, o?: RenameOptions) => {
        if (path.dirname(to) === dir) await fs.writeFile(to, theirs);
        return node.rename(from, to, o);
      },
    });
    const rq = new QemuImg(racy, []);
    const cases = [
      ['copy', new CopyMode(), source, 'qcow2'],
      ['flatten', new SnapshotMode('flatten'), source, 'raw'],
      ['overlay', new SnapshotMode('overlay'), source, 'qcow2'],
      ['cow', new CowMode(), master, 'qcow2'],
    ] as const;
    for (const [name, mode, src, format] of cases) {
      const target: ImageRef = { path: path.join(dir, `${name}.${format}`), format };
      theirs = `theirs: ${name}`;
      const err = await runMode(mode, rq, { source: src, target }).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(TargetAppearedError);
      expect((err as Error).message).toBe(
        `${target.path}: appeared during the run (another process made it); not overwritten`,
      );
      expect(await fs.readFile(target.path, 'utf8')).toBe(theirs);
    }
    // their files only: no temporary file of ours is left
    expect(await names(dir)).toEqual(['copy.qcow2', 'cow.qcow2', 'flatten.raw', 'overlay.qcow2']);
    expect(await sha256File(source.path)).toBe(sourceSha);
  });

  it('no space: copy fails early with both numbers, nothing left behind', async () => {
    const dir = path.join(root, 'tiny');
    await fs.mkdir(dir);
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=2M', 'tmpfs', dir]);
    tiny = dir;
    const target: ImageRef = { path: path.join(dir, 'big.raw'), format: 'raw' };
    const err = await runMode(new CopyMode(), q, { source, target }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoSpaceError);
    expect((err as NoSpaceError).requiredBytes).toBe(8 * MiB);
    expect((err as NoSpaceError).availableBytes).toBe(2 * MiB);
    expect((err as Error).message).toBe(
      `${dir}: not enough free space: ${8 * MiB} bytes required (qemu-img measure), ${2 * MiB} bytes available`,
    );
    expect(await names(dir)).toEqual([]);
    expect(await sha256File(source.path)).toBe(sourceSha);
  });
});
