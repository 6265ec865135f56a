/**
 * The qemu-img layer with the real qemu-img, on the local and the SSH node: every operation,
 * the backing-file policy and untrusted formats (hostile images point at a canary in the
 * test's own temp dir).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node, RunOptions } from '../../src/node/node.js';
import { BackingFileRefusedError } from '../../src/storage/errors.js';
import { CopyMode, runMode } from '../../src/storage/modes/index.js';
import { QemuImg } from '../../src/storage/qemu-img.js';
import {
  canary,
  dropBackingFormat,
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

const MiB = 1024 * 1024;

describe.each(NODE_KINDS)('qemu-img layer on the %s node', (kind) => {
  let node: Node;
  let root: string;
  let images: string;
  let q: QemuImg;

  beforeAll(async () => {
    node = await nodeOf(kind);
    root = await tempDir(`qemu-${kind}`);
    images = path.join(root, 'images');
    await fs.mkdir(images);
    q = new QemuImg(node, [images]);
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });
  const at = (n: string) => path.join(images, n);

  it('info walks a backing chain recorded with a relative name', async () => {
    await qemuImg(['create', '-q', '-f', 'qcow2', at('base.qcow2'), '16M']);
    await fs.symlink('base.qcow2', at('base-link.qcow2'));
    await qemuImg([
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'base.qcow2',
      '-F',
      'qcow2',
      at('mid.qcow2'),
    ]);
    await qemuImg([
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'mid.qcow2',
      '-F',
      'qcow2',
      at('top.qcow2'),
    ]);
    const chain = await q.infoChain({ path: at('top.qcow2'), format: 'qcow2' });
    expect(chain.map((c) => [c.path, c.format, c.virtualBytes])).toEqual([
      [at('top.qcow2'), 'qcow2', 16 * MiB],
      [at('mid.qcow2'), 'qcow2', 16 * MiB],
      [at('base.qcow2'), 'qcow2', 16 * MiB],
    ]);
    const qemuView = await q.infoBackingChain({ path: at('top.qcow2'), format: 'qcow2' });
    expect(qemuView).toHaveLength(3);
    expect(qemuView[2]?.backingFilename).toBeUndefined();
  });

  it('create makes an overlay with -b and -F; commit, rebase, resize, check, measure', async () => {
    const base = { path: at('c-base.qcow2'), format: 'qcow2' as const };
    const ov = { path: at('c-ov.qcow2'), format: 'qcow2' as const };
    await q.create(base, { sizeBytes: 8 * MiB, options: { compat: '1.1' } });
    await q.create(ov, { backing: base });
    const info = await q.info(ov);
    expect([info.backingFilename, info.backingFormat, info.virtualBytes]).toEqual([
      base.path,
      'qcow2',
      8 * MiB,
    ]);
    await writePattern(ov.path, 'qcow2', 0, 65536, 0xab);
    await q.commit(ov);
    await qemuImg(['-f', 'qcow2', '-c', 'read -P 0xab 0 65536', base.path], 'qemu-io');
    await writePattern(ov.path, 'qcow2', 65536, 65536, 0xcd);
    await q.rebase(ov, undefined);
    expect((await q.info(ov)).backingFilename).toBeUndefined();
    await qemuImg(['-f', 'qcow2', '-c', 'read -P 0xab 0 65536', ov.path], 'qemu-io');
    await q.resize(ov, 16 * MiB);
    expect((await q.info(ov)).virtualBytes).toBe(16 * MiB);
    await expect(q.resize(ov, 4 * MiB)).rejects.toThrow(/qemu-img resize failed/);
    expect(await q.check(ov)).toMatchObject({ ok: true, corruptions: 0 });
    const m = await q.measure(ov, 'raw');
    expect(m).toEqual({ requiredBytes: 16 * MiB, fullyAllocatedBytes: 16 * MiB });
    const m2 = await q.measure(ov, 'qcow2');
    expect(m2.requiredBytes).toBeGreaterThan(2 * 65536);
    expect(m2.requiredBytes).toBeLessThan(m2.fullyAllocatedBytes);
  });

  it('snapshots: create, list, delete', async () => {
    const img = { path: at('snap.qcow2'), format: 'qcow2' as const };
    await q.create(img, { sizeBytes: 4 * MiB });
    await q.snapshotCreate(img, 'before-v2v');
    expect((await q.snapshotList(img)).map((s) => s.name)).toEqual(['before-v2v']);
    await q.snapshotDelete(img, 'before-v2v');
    expect(await q.snapshotList(img)).toEqual([]);
    await expect(q.snapshotCreate(img, '-x; rm')).rejects.toThrow(
      'snapshot name "-x; rm" is not allowed',
    );
  });

  it('convert reports -p progress as events, with -m/-W and -o options, sparse', async () => {
    const src = at('conv.raw');
    await randomRaw(src, 16, 4);
    const events: number[] = [];
    const dst = { path: at('conv.qcow2'), format: 'qcow2' as const };
    await q.convert({ path: src, format: 'raw' }, dst, {
      coroutines: 4,
      outOfOrder: true,
      options: { compat: '0.10' },
      onProgress: (e) => events.push(e.percent),
    });
    expect(events.length).toBeGreaterThan(0);
    expect(events.at(-1)).toBe(100);
    expect([...events].sort((a, b) => a - b)).toEqual(events);
    const info = await q.info(dst);
    expect((info.raw['format-specific'] as { data: { compat: string } }).data.compat).toBe('0.10');
    expect(info.actualBytes).toBeLessThan(8 * MiB); // 4 MiB of data, 12 MiB of zeroes not written
    expect(await sameData(src, 'raw', dst.path, 'qcow2')).toBe(true);
  });

  it('refuses a backing file outside the allowed directories; the canary is untouched', async () => {
    const c = await canary(root);
    const evil = at('evil.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', c.file, '-F', 'raw', evil]);
    const before = await names(images);
    const err = await q.infoChain({ path: evil, format: 'qcow2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackingFileRefusedError);
    expect((err as Error).message).toContain(`${evil}: backing file ${c.file}`);
    expect((err as Error).message).toContain('outside the allowed directories');
    await expect(
      q.convert({ path: evil, format: 'qcow2' }, { path: at('evil-out.raw'), format: 'raw' }),
    ).rejects.toThrow(BackingFileRefusedError);
    await expect(
      q.create(
        { path: at('evil-cow.qcow2'), format: 'qcow2' },
        { backing: { path: evil, format: 'qcow2' } },
      ),
    ).rejects.toThrow(BackingFileRefusedError);
    // a symlink in the allowed directory does not help
    await fs.symlink(c.file, at('innocent.raw'));
    await qemuImg([
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'innocent.raw',
      '-F',
      'raw',
      at('evil2.qcow2'),
    ]);
    await expect(q.infoChain({ path: at('evil2.qcow2'), format: 'qcow2' })).rejects.toThrow(
      `backing file innocent.raw (${c.file}) is outside the allowed directories`,
    );
    expect(await names(images)).toEqual([...before, 'evil2.qcow2', 'innocent.raw'].sort());
    expect(await sha256File(c.file)).toBe(c.sha);
  });

  it('refuses a qcow2 external data file outside the allowed directories', async () => {
    const c = await canary(root);
    const data = path.join(path.dirname(c.file), 'data-file');
    const img = at('datafile.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${data}`, img, '1M']);
    const sha = await sha256File(data);
    await expect(q.info({ path: img, format: 'qcow2' })).rejects.toThrow(
      `${img}: external data file ${data} (${data}) is outside the allowed directories`,
    );
    await expect(
      q.convert({ path: img, format: 'qcow2' }, { path: at('datafile-out.raw'), format: 'raw' }),
    ).rejects.toThrow(BackingFileRefusedError);
    expect(await sha256File(data)).toBe(sha);
    expect(await sha256File(c.file)).toBe(c.sha);
    await expect(fs.stat(at('datafile-out.raw'))).rejects.toThrow();
  });

  it('refuses a backing file whose format is not recorded (qemu-img would probe it)', async () => {
    const ov = at('noformat.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', ov]);
    await dropBackingFormat(ov);
    await expect(q.infoChain({ path: ov, format: 'qcow2' })).rejects.toThrow(
      `${ov}: backing file base.qcow2 has no recorded format; qemu-img would probe it: refused`,
    );
  });

  it('a raw image posing as qcow2 stays raw when declared raw', async () => {
    const c = await canary(root);
    const posing = at('posing.img');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', c.file, '-F', 'raw', posing, '1M']);
    const info = await q.info({ path: posing, format: 'raw' });
    expect([info.format, info.backingFilename]).toEqual(['raw', undefined]);
    const out = at('posing-copy.raw');
    await q.convert({ path: posing, format: 'raw' }, { path: out, format: 'raw' });
    const copy = await fs.readFile(out);
    expect(copy.subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
    expect(copy.includes(Buffer.from('CANARY!'))).toBe(false);
    expect(await sha256File(c.file)).toBe(c.sha);
  });

  it('a wrong declared format is a clear error', async () => {
    await randomRaw(at('plain.raw'), 1);
    await expect(q.info({ path: at('plain.raw'), format: 'qcow2' })).rejects.toThrow(
      `${at('plain.raw')}: declared format qcow2 but the file is no qcow2 image`,
    );
    await expect(q.info({ path: at('base.qcow2'), format: 'vdi' })).rejects.toThrow(
      `${at('base.qcow2')}: declared format vdi but the file looks like qcow2`,
    );
  });

  it('a truncated or corrupt qcow2 is a clear error naming the file', async () => {
    const t = at('truncated.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', t, '4M']);
    await fs.truncate(t, 50);
    await expect(q.info({ path: t, format: 'qcow2' })).rejects.toThrow(
      new RegExp(`^${t}: qemu-img info failed: .*`),
    );
    const bad = at('corrupt.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', bad, '4M']);
    const buf = await fs.readFile(bad);
    const l1 = Number(buf.readBigUInt64BE(40));
    buf.writeBigUInt64BE((1n << 63n) | 0x500000n, l1);
    await fs.writeFile(bad, buf);
    const r = await q.check({ path: bad, format: 'qcow2' });
    expect(r.ok).toBe(false);
    expect(r.corruptions).toBeGreaterThan(0);
    await expect(q.info({ path: at('missing.qcow2'), format: 'qcow2' })).rejects.toThrow(
      `${at('missing.qcow2')}: qemu-img info failed`,
    );
  });

  it('a truncated qcow2 (clusters past the end of the file) is refused before any copy', async () => {
    const src = at('cut.qcow2');
    await randomRaw(at('cut-data.raw'), 4);
    await qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', at('cut-data.raw'), src]);
    await fs.truncate(src, MiB);
    const dst = at('cut-copy.raw');
    const before = await names(images);
    const err = await q
      .convert({ path: src, format: 'qcow2' }, { path: dst, format: 'raw' })
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      new RegExp(`^${src}: damaged qcow2 image: qemu-img check found [1-9]\\d* corruptions$`),
    );
    // through the copy mode: refused, nothing written
    await expect(
      runMode(new CopyMode(), q, {
        source: { path: src, format: 'qcow2' },
        target: { path: dst, format: 'raw' },
      }),
    ).rejects.toThrow(`${src}: damaged qcow2 image: qemu-img check found`);
    expect(await names(images)).toEqual(before);
    // an intact one still converts
    await qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', at('cut-data.raw'), at('whole.qcow2')]);
    await q.convert({ path: at('whole.qcow2'), format: 'qcow2' }, { path: dst, format: 'raw' });
    expect(await sameData(at('cut-data.raw'), 'raw', dst, 'raw')).toBe(true);
  });

  it('a truncated VDI (qemu-img check sees nothing) is refused by its header', async () => {
    const vdi = at('cut.vdi');
    await qemuImg(['convert', '-f', 'raw', '-O', 'vdi', at('cut-data.raw'), vdi]);
    const whole = (await fs.stat(vdi)).size;
    await fs.truncate(vdi, MiB);
    await expect(
      q.convert({ path: vdi, format: 'vdi' }, { path: at('cut-vdi.raw'), format: 'raw' }),
    ).rejects.toThrow(
      `${vdi}: damaged vdi image: header declares ${whole} bytes, file length ${MiB}`,
    );
    await expect(fs.stat(at('cut-vdi.raw'))).rejects.toThrow();
  });

  it('qemu-img opens the checked backing file, never a symlink swapped after the check', async () => {
    const c = await canary(root);
    const base = at('swap-base.raw');
    const link = at('swap-link.raw');
    await fs.writeFile(base, Buffer.alloc(MiB, 'B'));
    await fs.symlink('swap-base.raw', link);
    const top = at('swap-top.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'swap-link.raw', '-F', 'raw', top]);
    // After the policy has checked the chain, when qemu-img is about to run, the symlink is
    // swapped to the canary (outside the allowed directories).
    const swapped: string[] = [];
    const racy = wrapNode(node, {
      run: async (argv: readonly string[], options?: RunOptions) => {
        if (argv[0] === 'qemu-img' && (argv[1] === 'convert' || argv[1] === 'commit')) {
          await fs.rm(link);
          await fs.symlink(c.file, link);
          swapped.push(argv[1]);
        }
        return node.run(argv, options);
      },
    });
    const rq = new QemuImg(racy, [images]);
    const out = at('swap-out.raw');
    await rq.convert({ path: top, format: 'qcow2' }, { path: out, format: 'raw' });
    const data = await fs.readFile(out);
    expect(data.includes(Buffer.from('CANARY!'))).toBe(false);
    expect(data.equals(Buffer.alloc(MiB, 'B'))).toBe(true);
    // commit writes into the backing file: into the checked one, not the canary
    await fs.rm(link);
    await fs.symlink('swap-base.raw', link);
    await writePattern(top, 'qcow2', 0, 65536, 0x43);
    await rq.commit({ path: top, format: 'qcow2' });
    expect(swapped).toEqual(['convert', 'commit']);
    expect((await fs.readFile(base)).subarray(0, 65536).equals(Buffer.alloc(65536, 'C'))).toBe(
      true,
    );
    expect(await sha256File(c.file)).toBe(c.sha);
  });
});
