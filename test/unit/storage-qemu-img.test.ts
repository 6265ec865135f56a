/**
 * The pure parts of the storage layer: qemu-img's JSON (golden files captured from a real
 * qemu-img 7.2 under test/golden/qemu-img/), progress lines, format magic, VCL naming and the
 * stale-lock rule.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import { formatFromMagic } from '../../src/storage/image-format.js';
import { isStale } from '../../src/storage/master-cache.js';
import {
  chainSpec,
  parseCheckJson,
  parseInfoChainJson,
  parseInfoJson,
  parseMeasureJson,
  parseProgress,
} from '../../src/storage/qemu-img.js';
import { cowPath, masterPath } from '../../src/storage/repository.js';

const GOLDEN = path.join(import.meta.dirname, '..', 'golden', 'qemu-img');
const golden = (name: string) => fs.readFile(path.join(GOLDEN, name), 'utf8');

describe('qemu-img info JSON', () => {
  it('reads a qcow2 overlay: format, sizes, backing file and its format', async () => {
    const i = parseInfoJson(await golden('info-qcow2-overlay.json'), '/x/overlay.qcow2');
    expect(i).toMatchObject({
      path: '/x/overlay.qcow2',
      format: 'qcow2',
      virtualBytes: 67108864,
      clusterSize: 65536,
      backingFilename: 'base.qcow2',
      backingFormat: 'qcow2',
      dirty: false,
      snapshots: [],
    });
    expect(i.actualBytes).toBeGreaterThan(0);
  });

  it('reads internal snapshots', async () => {
    const i = parseInfoJson(await golden('info-qcow2-snapshot.json'), 'base.qcow2');
    expect(i.backingFilename).toBeUndefined();
    expect(i.snapshots).toHaveLength(1);
    expect(i.snapshots[0]).toMatchObject({ id: '1', name: 'snap1', vmStateBytes: 0 });
    expect(i.snapshots[0]?.dateSec).toBeGreaterThan(1_700_000_000);
  });

  it('reads a split VMDK: virtual size and actual size over all extents', async () => {
    const i = parseInfoJson(await golden('info-vmdk-split.json'), 'split.vmdk');
    expect(i.format).toBe('vmdk');
    expect(i.virtualBytes).toBe(5 * 1024 ** 3);
    const extents = (i.raw['format-specific'] as { data: { extents: unknown[] } }).data.extents;
    expect(extents).toHaveLength(3);
    expect(i.actualBytes).toBeGreaterThan(0);
  });

  it('reads a raw image', async () => {
    const i = parseInfoJson(await golden('info-raw.json'), 'disk.img');
    expect(i).toMatchObject({ format: 'raw', virtualBytes: 8 * 1024 * 1024 });
  });

  it('reads a --backing-chain array, top first', async () => {
    const chain = parseInfoChainJson(await golden('info-backing-chain.json'), 'overlay.qcow2');
    expect(chain.map((c) => [c.path, c.format, c.backingFilename])).toEqual([
      ['overlay.qcow2', 'qcow2', 'base.qcow2'],
      ['base.qcow2', 'qcow2', undefined],
    ]);
  });

  it('refuses output that is not qemu-img JSON, naming the file', () => {
    expect(() => parseInfoJson('image: x\nfile format: qcow2', '/a.qcow2')).toThrow(
      '/a.qcow2: qemu-img info did not print JSON',
    );
    expect(() => parseInfoJson('{"format":"bogus"}', '/a.img')).toThrow(
      '/a.img: qemu-img reports format "bogus"',
    );
    expect(() => parseInfoChainJson('{}', '/a')).toThrow(StorageError);
  });
});

describe('qemu-img check and measure JSON', () => {
  it('a clean image is ok', async () => {
    const c = parseCheckJson(await golden('check-clean.json'), 'o.qcow2');
    expect(c).toMatchObject({ ok: true, corruptions: 0, leaks: 0, checkErrors: 0 });
  });
  it('a corrupt image is not', async () => {
    const c = parseCheckJson(await golden('check-corrupt.json'), 'leak.qcow2');
    expect(c).toMatchObject({ ok: false, corruptions: 2, checkErrors: 0 });
  });
  it('measure gives required and fully allocated bytes', async () => {
    expect(parseMeasureJson(await golden('measure-qcow2.json'), 'o')).toEqual({
      requiredBytes: 327680,
      fullyAllocatedBytes: 67436544,
    });
    expect(parseMeasureJson(await golden('measure-size-raw.json'), 'o')).toEqual({
      requiredBytes: 1073741824,
      fullyAllocatedBytes: 1073741824,
    });
    expect(() => parseMeasureJson('{}', '/m')).toThrow('/m: qemu-img measure did not print');
  });
});

describe('the checked chain qemu-img is given', () => {
  it('names each checked file with its format; the last image gets no backing', async () => {
    const spec = chainSpec([
      { path: '/images/vm 1,top.qcow2', format: 'qcow2', checkedDataFile: undefined },
      { path: '/images/mid.qcow2', format: 'qcow2', checkedDataFile: '/images/mid.data' },
      { path: '/repo/base "v3".vmdk', format: 'vmdk' },
    ]);
    expect(spec.startsWith('json:{')).toBe(true);
    await expect(`${JSON.stringify(JSON.parse(spec.slice(5)), null, 2)}\n`).toMatchFileSnapshot(
      path.join(GOLDEN, 'chain-spec.json'),
    );
    expect(JSON.parse(chainSpec([{ path: '/a.raw', format: 'raw' }]).slice(5))).toEqual({
      driver: 'raw',
      file: { driver: 'file', filename: '/a.raw' },
      backing: null,
    });
  });
});

describe('progress and magic', () => {
  it('parses -p progress, chunks with carriage returns', () => {
    expect(parseProgress('    (0.00/100%)\r    (12.34/100%)\r    (100.00/100%)\r\n')).toEqual([
      0, 12.34, 100,
    ]);
    expect(parseProgress('no progress here')).toEqual([]);
  });
  it('tells formats by magic, raw otherwise', () => {
    expect(formatFromMagic(Buffer.from('QFI\xfb\0\0\0\x03', 'latin1'))).toBe('qcow2');
    expect(formatFromMagic(Buffer.from('KDMV\x01\0\0\0', 'latin1'))).toBe('vmdk');
    expect(formatFromMagic(Buffer.from('# Disk DescriptorFile\nversion=1\n'))).toBe('vmdk');
    expect(formatFromMagic(Buffer.from('conectix'))).toBe('vpc');
    expect(formatFromMagic(Buffer.alloc(512))).toBe('raw');
    expect(formatFromMagic(Buffer.from('version=1\nCID=fffffffe\ncreateType="vmfs"\n'))).toBe(
      'vmdk',
    );
  });
});

describe('VCL naming', () => {
  it('master and COW paths', () => {
    expect(masterPath('/var/lib/libvirt/images', 'vmwarewinxp-base234-v23')).toBe(
      '/var/lib/libvirt/images/vmwarewinxp-base234-v23.qcow2',
    );
    expect(cowPath('/var/lib/libvirt/images', 'vclv99-37', 234, 23)).toBe(
      '/var/lib/libvirt/images/vclv99-37_234-v23.qcow2',
    );
  });
  it('refuses names that leave the directory', () => {
    expect(() => masterPath('/ds', '../canary')).toThrow('is not a safe file name');
    expect(() => masterPath('/ds', 'a/b')).toThrow('is not a safe file name');
    expect(() => masterPath('ds', 'a')).toThrow('must be an absolute path');
    expect(() => cowPath('/vm', 'pc', 1.5, 1)).toThrow('image id 1.5 is not a number');
  });
});

describe('stale locks', () => {
  it('a dead owner on this host is stale, a live one is not', () => {
    const me = { host: os.hostname(), pid: process.pid, time: 0, token: 't' };
    expect(isStale(me, Date.now(), 1000)).toBe(false);
    expect(isStale({ ...me, pid: 2 ** 22 + 12345 }, Date.now(), 1000)).toBe(true);
  });
  it('an owner on another host is stale once its heartbeat is old', () => {
    const other = { host: 'elsewhere.invalid', pid: 1, time: 10_000, token: 't' };
    expect(isStale(other, 10_500, 1000)).toBe(false);
    expect(isStale(other, 12_000, 1000)).toBe(true);
    expect(isStale(undefined, 12_000, 1000)).toBe(false);
  });
});
