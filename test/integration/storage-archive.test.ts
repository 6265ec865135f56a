/**
 * Disks read in place from an uncompressed archive (an OVA's tar member) by the real qemu-img,
 * on the local and the SSH node: the data comes out identical and the archive is untouched;
 * hostile members (a descriptor naming a host file, a backing file) are refused before qemu
 * reads anything outside the archive.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackingFileRefusedError, StorageError } from '../../src/storage/errors.js';
import { type ArchivedImage, memberSpec, QemuImg } from '../../src/storage/qemu-img.js';
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
} from './storage-helpers.js';

const exec = promisify(execFile);

/** The members of a ustar archive with the offset and size of their data. */
async function members(tar: string): Promise<Map<string, { offset: number; size: number }>> {
  const buf = await fs.readFile(tar);
  const out = new Map<string, { offset: number; size: number }>();
  for (let at = 0; at + 512 <= buf.length; ) {
    const name = buf
      .subarray(at, at + 100)
      .toString('latin1')
      .replace(/\0.*$/s, '');
    if (!name) break;
    const size = Number.parseInt(
      buf
        .subarray(at + 124, at + 136)
        .toString('latin1')
        .trim(),
      8,
    );
    out.set(name, { offset: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

let root: string;
let ova: string;
let ovaSha: string;
let raw: string;
let guard: { file: string; sha: string };
const at = new Map<string, { offset: number; size: number }>();

function member(name: string, format: ArchivedImage['format']): ArchivedImage {
  const m = at.get(name);
  if (!m) throw new Error(`no member ${name}`);
  return { archive: ova, member: name, format, ...m };
}

beforeAll(async () => {
  root = await tempDir('archive');
  guard = await canary(root);
  const src = path.join(root, 'src');
  await fs.mkdir(src);
  raw = path.join(root, 'disk.raw');
  await randomRaw(raw, 8, 3);
  await qemuImg([
    'convert',
    '-f',
    'raw',
    '-O',
    'vmdk',
    '-o',
    'subformat=streamOptimized',
    raw,
    `${src}/guest-disk1.vmdk`,
  ]);
  await qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', raw, `${src}/plain.qcow2`]);
  await fs.writeFile(`${src}/guest.ovf`, '<Envelope/>\n');
  // Hostile members: a descriptor-only VMDK whose extent is the canary, a qcow2 backed by it.
  await fs.writeFile(
    `${src}/hostile.vmdk`,
    `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "${guard.file}" 0\n`,
  );
  await qemuImg([
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    guard.file,
    '-F',
    'raw',
    `${src}/backed.qcow2`,
  ]);
  ova = path.join(root, 'guest.ova');
  await exec('tar', [
    '--format=ustar',
    '-C',
    src,
    '-cf',
    ova,
    'guest.ovf',
    'guest-disk1.vmdk',
    'plain.qcow2',
    'hostile.vmdk',
    'backed.qcow2',
  ]);
  for (const [k, v] of await members(ova)) at.set(k, v);
  ovaSha = await sha256File(ova);
});

afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

it('describes the member as its format over the byte range, in whole sectors', () => {
  expect(
    memberSpec({ archive: '/x/g.ova', member: 'd.vmdk', offset: 1536, size: 1000, format: 'vmdk' }),
  ).toBe(
    'json:{"driver":"vmdk","file":{"driver":"raw","offset":1536,"size":1024,"file":{"driver":"file","filename":"/x/g.ova"}}}',
  );
});

describe.each(NODE_KINDS)('archived disks on the %s node', (kind) => {
  let q: QemuImg;
  let out: string;
  beforeAll(async () => {
    q = new QemuImg(await nodeOf(kind), []);
    out = await tempDir(`archive-out-${kind}`);
  });
  afterAll(async () => {
    if (out) await fs.rm(out, { recursive: true, force: true });
  });

  it('converts a streamOptimized VMDK and a qcow2 straight out of the tar', async () => {
    for (const [name, format] of [
      ['guest-disk1.vmdk', 'vmdk'],
      ['plain.qcow2', 'qcow2'],
    ] as const) {
      const dst = path.join(out, `${name}.out.qcow2`);
      await q.convertMember(member(name, format), { path: dst, format: 'qcow2' });
      expect(await sameData(dst, 'qcow2', raw, 'raw')).toBe(true);
    }
    expect(await sha256File(ova)).toBe(ovaSha);
  });

  it('measures a member and lays a read-only overlay over it', async () => {
    const m = member('guest-disk1.vmdk', 'vmdk');
    const need = await q.measureMember(m, 'qcow2');
    expect(need.requiredBytes).toBeGreaterThan(3 * 1024 * 1024);
    const overlay = path.join(out, 'look.qcow2');
    await q.overlayOnMember(m, overlay);
    expect(await sameData(overlay, 'qcow2', raw, 'raw')).toBe(true);
    await fs.rm(overlay);
    expect(await sha256File(ova)).toBe(ovaSha);
  });

  it('refuses a descriptor-only VMDK (it would name host files) before qemu opens it', async () => {
    const dst = path.join(out, 'hostile.qcow2');
    const e = await q
      .convertMember(member('hostile.vmdk', 'vmdk'), { path: dst, format: 'qcow2' })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BackingFileRefusedError);
    expect((e as Error).message).toContain(`${ova} (hostile.vmdk)`);
    expect((e as Error).message).toContain('not a single-file');
    expect(await names(out)).not.toContain('hostile.qcow2');
    expect(await sha256File(guard.file)).toBe(guard.sha);
  });

  it('refuses a member that names a backing file, and a member of the wrong format', async () => {
    const e = await q.infoMember(member('backed.qcow2', 'qcow2')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BackingFileRefusedError);
    expect((e as Error).message).toMatch(/names a backing file \(.*canary\); refused/);
    const f = await q.infoMember(member('guest-disk1.vmdk', 'qcow2')).catch((x: unknown) => x);
    expect(f).toBeInstanceOf(StorageError);
    expect((f as Error).message).toContain(`${ova} (guest-disk1.vmdk): not a qcow2 image`);
    expect(await sha256File(guard.file)).toBe(guard.sha);
  });
});
