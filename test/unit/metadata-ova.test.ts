import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CommandNotFoundError, MetadataError, UsageError } from '../../src/errors.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import { detectArchiveKind } from '../../src/metadata/ovf/ova-archive.js';
import { OvaReader } from '../../src/metadata/ovf/ova-reader.js';
import type { ReaderContext } from '../../src/metadata/reader.js';
import { LocalNode } from '../../src/node/local-node.js';
import type { Node } from '../../src/node/node.js';
import { CleanupStack } from '../../src/run/cleanup.js';
import { StorageError } from '../../src/storage/errors.js';
import { expectGolden } from '../harness/golden.js';
import { fakeFile, references } from '../harness/ovf-fixtures.js';

// Each case runs tar, gzip, xz or python3 several times: slow on a busy 2-core machine.
vi.setConfig({ testTimeout: 60_000 });

const OVA_GOLDEN = path.join(import.meta.dirname, '../golden/metadata/ova');
const OVF_GOLDEN = path.join(import.meta.dirname, '../golden/metadata/ovf');
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const reader = new OvaReader();

const DISK1 = 'web-appliance-disk1.vmdk';
const DISK2 = 'web-appliance-disk2.vmdk';

let root: string;

/** `s` as a literal in a RegExp. */
function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

/**
 * A fresh case directory under the test's root, with its own private tmpDir and `--tmp-dir`
 * (`options.tmpDir`, where members that must be files are extracted).
 */
async function caseDir(
  name: string,
): Promise<{ dir: string; ctx: ReaderContext; options: { tmpDir: string } }> {
  const dir = path.join(root, name);
  await fs.mkdir(path.join(dir, 'tmp'), { recursive: true });
  await fs.mkdir(path.join(dir, 'ext'), { recursive: true });
  return {
    dir,
    ctx: { node: new LocalNode(), log: silent, tmpDir: path.join(dir, 'tmp') },
    options: { tmpDir: path.join(dir, 'ext') },
  };
}

interface StageOptions {
  edit?: (text: string) => string;
  /** Write these bytes instead of the right ones. */
  replace?: Record<string, Buffer>;
  /** Leave these out. */
  skip?: string[];
}

/**
 * Writes an OVF package (OVF, manifest, the files it references) into `dir`; returns the names in
 * ovftool's order: OVF first (as the spec wants), then the manifest, then the disks.
 */
async function stageFiles(dir: string, corpus: string, ovf: string, options: StageOptions = {}) {
  await fs.mkdir(dir, { recursive: true });
  let text = await fs.readFile(path.join(corpus, ovf), 'utf8');
  if (options.edit) text = options.edit(text);
  const names: string[] = [];
  const put = async (name: string, data: Buffer | string) => {
    if (options.skip?.includes(name)) return;
    await fs.writeFile(path.join(dir, name), options.replace?.[name] ?? data);
    names.push(name);
  };
  await put(ovf, text);
  const mf = ovf.replace(/\.ovf$/, '.mf');
  const mfText = await fs.readFile(path.join(corpus, mf), 'utf8').catch(() => undefined);
  if (mfText !== undefined) await put(mf, mfText);
  for (const r of references(text)) await put(r.href, fakeFile(r.href, r.size));
  return names;
}

function run(argv: string[], cwd?: string): void {
  execFileSync(argv[0] as string, argv.slice(1), { cwd, stdio: 'pipe' });
}

type Kind = 'tar' | 'tar-gz' | 'tar-xz' | 'zip' | 'subfolder';

/** Builds the web-appliance OVA of `kind` with the real tools, in a case directory. */
async function buildAppliance(kind: Kind, options: StageOptions = {}, name: string = kind) {
  const c = await caseDir(name);
  const stage = path.join(c.dir, 'stage');
  const archive = path.join(c.dir, `web-appliance-${kind}.ova`);
  if (kind === 'subfolder') {
    const names = await stageFiles(
      path.join(stage, 'web-appliance'),
      OVA_GOLDEN,
      'web-appliance.ovf',
      options,
    );
    const members = ['web-appliance', ...names.map((n) => `web-appliance/${n}`)];
    run(['tar', '--format=ustar', '--no-recursion', '-cf', archive, '-C', stage, ...members]);
  } else {
    const names = await stageFiles(stage, OVA_GOLDEN, 'web-appliance.ovf', options);
    if (kind === 'zip') {
      run(['python3', '-m', 'zipfile', '-c', archive, ...names.map((n) => path.join(stage, n))]);
    } else {
      const flag = { tar: '-cf', 'tar-gz': '-czf', 'tar-xz': '-cJf' }[kind];
      run(['tar', '--format=ustar', flag, archive, '-C', stage, ...names]);
    }
  }
  await fs.rm(stage, { recursive: true });
  return { ...c, archive };
}

/** Extraction directories have random names: make them stable for golden files. */
function stable(guest: SourceGuest): SourceGuest {
  return JSON.parse(
    JSON.stringify(guest).replace(
      /\/v2v-load-ova-[0-9a-f]{8}-[0-9]+-[0-9a-f]{12}\//g,
      '/v2v-load-ova-XXXXXX/',
    ),
  );
}

/** The model without where things are: what every archive kind must agree on. */
function placeless(guest: SourceGuest): unknown {
  return {
    ...guest,
    disks: guest.disks.map(({ path: _p, inArchive: _a, ...d }) => d),
    origin: guest.origin.kind,
  };
}

/** Every path under `dir`, recursively. */
async function listAll(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true });
  return entries.map((e) => path.join(dir, e)).sort();
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-ova-'));
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('archive kinds', () => {
  it('are told by magic bytes', () => {
    const ustar = Buffer.alloc(512);
    ustar.write('ustar', 257, 'latin1');
    expect(detectArchiveKind(ustar)).toBe('tar');
    expect(detectArchiveKind(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('tar.gz');
    expect(detectArchiveKind(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe('tar.xz');
    expect(detectArchiveKind(Buffer.from('PK\u0003\u0004', 'latin1'))).toBe('zip');
    expect(detectArchiveKind(Buffer.from('<?xml version="1.0"?>'))).toBeUndefined();
    expect(detectArchiveKind(Buffer.alloc(512))).toBeUndefined();
  });
});

describe('OvaReader: the archive kinds found in the wild (golden)', () => {
  const models = new Map<Kind, SourceGuest>();

  it('plain tar: disks read in place, at their byte offset', async () => {
    const { dir, ctx, archive } = await buildAppliance('tar');
    const guest = await reader.read([archive], {}, ctx);
    models.set('tar', guest);
    await expectGolden(stable(guest), path.join(OVA_GOLDEN, 'web-appliance-tar.ova'), dir);
    const bytes = await fs.readFile(archive);
    for (const [i, name, size] of [
      [0, DISK1, 66048],
      [1, DISK2, 5000],
    ] as const) {
      const disk = guest.disks[i];
      expect(disk?.path).toBe(archive);
      expect(disk?.inArchive).toMatchObject({ archive, member: name, size });
      const at = disk?.inArchive?.offset ?? -1;
      expect(bytes.subarray(at, at + size).equals(fakeFile(name, size))).toBe(true);
    }
    expect(await fs.readdir(ctx.tmpDir)).toEqual([]);
  });

  it.each(['tar-gz', 'tar-xz', 'zip'] as const)(
    '%s: nothing extracted, disks named by member, same model',
    async (kind) => {
      const { dir, ctx, archive, options } = await buildAppliance(kind);
      const guest = await reader.read([archive], options, ctx);
      models.set(kind, guest);
      await expectGolden(stable(guest), path.join(OVA_GOLDEN, `web-appliance-${kind}.ova`), dir);
      expect(guest.disks.map((d) => [d.path, d.inArchive])).toEqual([
        [archive, { archive, member: DISK1, size: 66048 }],
        [archive, { archive, member: DISK2, size: 5000 }],
      ]);
      expect(await fs.readdir(ctx.tmpDir)).toEqual([]);
      expect(await fs.readdir(options.tmpDir)).toEqual([]);
      expect(placeless(guest)).toEqual(placeless(models.get('tar') as SourceGuest));
    },
  );

  it('tar with the OVF in a subfolder', async () => {
    const { dir, ctx, archive } = await buildAppliance('subfolder');
    const guest = await reader.read([archive], {}, ctx);
    await expectGolden(stable(guest), path.join(OVA_GOLDEN, 'web-appliance-subfolder.ova'), dir);
    expect(guest.disks.map((d) => d.inArchive?.member)).toEqual([
      `web-appliance/${DISK1}`,
      `web-appliance/${DISK2}`,
    ]);
    expect(placeless(guest)).toEqual(placeless(models.get('tar') as SourceGuest));
  });

  it('tar -C DIR . (members named ./x) and a zip with a folder entry read the same', async () => {
    const c = await caseDir('dot');
    const stage = path.join(c.dir, 'stage');
    await stageFiles(path.join(stage, 'web-appliance'), OVA_GOLDEN, 'web-appliance.ovf');
    const dotTar = path.join(c.dir, 'dot.ova');
    run(['tar', '-cf', dotTar, '-C', path.join(stage, 'web-appliance'), '.']);
    const dotted = await reader.read([dotTar], {}, c.ctx);
    expect(placeless(dotted)).toEqual(placeless(models.get('tar') as SourceGuest));
    const zipDir = path.join(c.dir, 'folder.zip');
    run(['python3', '-m', 'zipfile', '-c', zipDir, path.join(stage, 'web-appliance')]);
    const zipped = await reader.read([zipDir], {}, c.ctx);
    expect(zipped.disks.map((d) => d.inArchive?.member)).toEqual([
      `web-appliance/${DISK1}`,
      `web-appliance/${DISK2}`,
    ]);
    expect(placeless(zipped)).toEqual(placeless(models.get('tar') as SourceGuest));
  });

  it.each([
    ['tar', '-cf'],
    ['tar.gz', '-czf'],
  ])(
    'VirtualBox order (manifest last) in a %s: digests are computed after the pass',
    async (kind, flag) => {
      const c = await caseDir(`vbox-order-${kind}`);
      const stage = path.join(c.dir, 'stage');
      await stageFiles(stage, OVA_GOLDEN, 'web-appliance.ovf');
      const order = ['web-appliance.ovf', DISK1, DISK2, 'web-appliance.mf'];
      const archive = path.join(c.dir, 'vbox-order.ova');
      run(['tar', '--format=ustar', flag, archive, '-C', stage, ...order]);
      const guest = await reader.read([archive], c.options, c.ctx);
      expect(placeless(guest)).toEqual(placeless(models.get('tar') as SourceGuest));

      await fs.writeFile(path.join(stage, DISK1), Buffer.alloc(66048, 1));
      const bad = path.join(c.dir, 'vbox-order-bad.ova');
      run(['tar', '--format=ustar', flag, bad, '-C', stage, ...order]);
      const e = await failure(reader.read([bad], c.options, c.ctx));
      expect(e.message).toBe(
        `${bad}:web-appliance.mf:2: SHA1 digest mismatch for "${DISK1}": the manifest says aca10c9197f61d4e82484e0653391620688276cf, the file has ${createHash('sha1').update(Buffer.alloc(66048, 1)).digest('hex')}`,
      );
      expect(await fs.readdir(c.options.tmpDir)).toEqual([]);
    },
  );

  it('an ISO and a snapshot chain are extracted under --tmp-dir (0700), removed by the run', {
    timeout: 60_000,
  }, async () => {
    const c = await caseDir('iso');
    const cleanup = new CleanupStack();
    const ctx = { ...c.ctx, cleanup };
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVF_GOLDEN, 'vmware-workstation.ovf');
    const archive = path.join(c.dir, 'workstation.ova');
    run(['tar', '--format=ustar', '-cf', archive, '-C', stage, ...names]);
    const guest = await reader.read([archive], c.options, ctx);
    const [extractDir, ...more] = await fs.readdir(c.options.tmpDir);
    expect(more).toEqual([]);
    expect(extractDir).toMatch(/^v2v-load-ova-[0-9a-f]{8}-[0-9]+-[0-9a-f]{12}$/);
    const ext = path.join(c.options.tmpDir, extractDir as string);
    expect((await fs.stat(ext)).mode & 0o777).toBe(0o700);
    const iso = guest.cdroms[0]?.path ?? '';
    expect(iso).toBe(path.join(ext, 'ubuntu-dev-file1.iso'));
    expect((await fs.readFile(iso)).equals(fakeFile('ubuntu-dev-file1.iso', 4096))).toBe(true);
    expect((await fs.stat(iso)).mode & 0o777).toBe(0o600);
    expect(guest.disks[0]?.path).toBe(archive);
    expect(await fs.readdir(ext)).toEqual(['ubuntu-dev-file1.iso']);
    expect(await fs.readdir(c.ctx.tmpDir)).toEqual([]);
    await cleanup.run();
    expect(await fs.readdir(c.options.tmpDir)).toEqual([]);

    // The chain's parents are extracted, from a plain tar and from a tar.gz; the top disk is not.
    const chainNames = await stageFiles(
      path.join(c.dir, 'chain'),
      OVF_GOLDEN,
      'snapshot-chain.ovf',
    );
    for (const flag of ['-cf', '-czf']) {
      const chainOva = path.join(c.dir, `chain${flag}.ova`);
      run([
        'tar',
        '--format=ustar',
        flag,
        chainOva,
        '-C',
        path.join(c.dir, 'chain'),
        ...chainNames,
      ]);
      const chained = await reader.read([chainOva], c.options, ctx);
      const top = chained.disks[0];
      // qemu follows a chain by file name: all of its disks are files, side by side.
      expect(
        [top?.path ?? '', ...(top?.backingChain ?? [])].map((p) =>
          path.relative(c.options.tmpDir, p),
        ),
      ).toEqual([
        expect.stringMatching(
          /^v2v-load-ova-[0-9a-f]{8}-[0-9]+-[0-9a-f]{12}\/win2019-delta2\.vmdk$/,
        ),
        expect.stringMatching(
          /^v2v-load-ova-[0-9a-f]{8}-[0-9]+-[0-9a-f]{12}\/win2019-delta1\.vmdk$/,
        ),
        expect.stringMatching(/^v2v-load-ova-[0-9a-f]{8}-[0-9]+-[0-9a-f]{12}\/win2019-base\.vmdk$/),
      ]);
      expect(top?.inArchive?.member).toBe('win2019-delta2.vmdk');
      expect(
        (await fs.readFile(top?.backingChain[1] ?? '')).equals(
          fakeFile('win2019-base.vmdk', 73728),
        ),
      ).toBe(true);
      expect(chained.disks[1]?.path).toBe(chainOva);
      await cleanup.run();
      expect(await fs.readdir(c.options.tmpDir)).toEqual([]);
    }
  });

  it('without a cleanup stack, the extraction directory is gone when read returns', async () => {
    const c = await caseDir('iso-no-stack');
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVF_GOLDEN, 'vmware-workstation.ovf');
    const archive = path.join(c.dir, 'workstation.ova');
    run(['tar', '--format=ustar', '-czf', archive, '-C', stage, ...names]);
    const guest = await reader.read([archive], c.options, c.ctx);
    expect(path.dirname(path.dirname(guest.cdroms[0]?.path ?? ''))).toBe(c.options.tmpDir);
    expect(await fs.readdir(c.options.tmpDir)).toEqual([]);
  });
});

describe('OvaReader: manifest and members', () => {
  it('a digest mismatch names the member', async () => {
    const { archive, ctx } = await buildAppliance(
      'tar',
      { replace: { [DISK2]: Buffer.alloc(5000) } },
      'mismatch',
    );
    const e = await failure(reader.read([archive], {}, ctx));
    expect(e).toBeInstanceOf(MetadataError);
    expect(e.message).toMatch(
      new RegExp(
        `^${archive.replace(/[.]/g, '\\.')}:web-appliance\\.mf:3: SHA1 digest mismatch for "${DISK2}": the manifest says 6e8a88bb`,
      ),
    );
  });

  it('a member the manifest lists but the archive lacks names the member', async () => {
    const { archive, ctx } = await buildAppliance('tar-gz', { skip: [DISK2] }, 'absent');
    const e = await failure(reader.read([archive], {}, ctx));
    expect(e.message).toBe(
      `${archive}:web-appliance.mf:3: lists "${DISK2}", which is not in the archive`,
    );
  });

  it('a disk the OVF references but the archive lacks (no manifest) names the OVF and the file', async () => {
    const { archive, ctx } = await buildAppliance(
      'tar',
      { skip: [DISK2, 'web-appliance.mf'] },
      'missing-disk',
    );
    const e = await failure(reader.read([archive], {}, ctx));
    expect(e.message).toBe(
      `${archive}:web-appliance.ovf: disk file "${DISK2}" (File file2) is missing: not in the archive (no member "${DISK2}")`,
    );
  });

  it('members not in the manifest are noted; so is a certificate', async () => {
    const c = await caseDir('extra');
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVA_GOLDEN, 'web-appliance.ovf');
    await fs.writeFile(path.join(stage, 'README.txt'), 'read me');
    await fs.writeFile(path.join(stage, 'web-appliance.cert'), 'cert');
    const archive = path.join(c.dir, 'extra.ova');
    run([
      'tar',
      '--format=ustar',
      '-cf',
      archive,
      '-C',
      stage,
      ...names,
      'web-appliance.cert',
      'README.txt',
    ]);
    const guest = await reader.read([archive], {}, c.ctx);
    expect(guest.notes.slice(-2)).toEqual([
      'certificate "web-appliance.cert" not verified',
      'member "README.txt" is not listed in the manifest: not verified',
    ]);
  });

  it('no .ovf, or two, is an error', async () => {
    const c = await caseDir('ovf-count');
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVA_GOLDEN, 'web-appliance.ovf');
    const none = path.join(c.dir, 'none.ova');
    run(['tar', '-cf', none, '-C', stage, ...names.filter((n) => !n.endsWith('.ovf'))]);
    expect((await failure(reader.read([none], {}, c.ctx))).message).toBe(
      `${none}: no .ovf descriptor in the archive: not an OVA`,
    );
    await fs.copyFile(path.join(stage, 'web-appliance.ovf'), path.join(stage, 'second.ovf'));
    const two = path.join(c.dir, 'two.ova');
    run(['tar', '-cf', two, '-C', stage, ...names, 'second.ovf']);
    expect((await failure(reader.read([two], {}, c.ctx))).message).toBe(
      `${two}: 2 .ovf descriptors in the archive (web-appliance.ovf, second.ovf): expected one`,
    );
  });
});

describe('OvaReader: one manifest per file (no manifest named after the OVF)', () => {
  const sha = (algorithm: string, data: Buffer | string) =>
    createHash(algorithm).update(data).digest('hex');

  /** web-appliance with web-appliance-disk1.mf (SHA1) and web-appliance-disk2.mf (SHA256). */
  async function perFile(kind: 'tar' | 'zip', name: string, disk2?: Buffer) {
    const c = await caseDir(name);
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVA_GOLDEN, 'web-appliance.ovf', {
      skip: ['web-appliance.mf'],
    });
    await fs.writeFile(
      path.join(stage, 'web-appliance-disk1.mf'),
      `SHA1(${DISK1})= ${sha('sha1', fakeFile(DISK1, 66048))}\n`,
    );
    await fs.writeFile(
      path.join(stage, 'web-appliance-disk2.mf'),
      `SHA256(${DISK2})= ${sha('sha256', fakeFile(DISK2, 5000))}\n`,
    );
    if (disk2) await fs.writeFile(path.join(stage, DISK2), disk2);
    const members = [names[0] as string, 'web-appliance-disk1.mf', 'web-appliance-disk2.mf'];
    members.push(...names.slice(1));
    const archive = path.join(c.dir, `${name}.ova`);
    if (kind === 'zip') {
      run(['python3', '-m', 'zipfile', '-c', archive, ...members.map((n) => path.join(stage, n))]);
    } else {
      run(['tar', '--format=ustar', '-cf', archive, '-C', stage, ...members]);
    }
    return { ...c, archive };
  }

  it.each(['tar', 'zip'] as const)(
    '%s: every .mf is verified; the model is the same',
    async (kind) => {
      const { archive, ctx, options } = await perFile(kind, `per-file-${kind}`);
      const guest = await reader.read([archive], options, ctx);
      expect(guest.notes).toEqual([
        'VMware settings not mapped: tools.syncTimeWithHost',
        'member "web-appliance.ovf" is not listed in any manifest: not verified',
      ]);
      expect(guest.disks.map((d) => d.inArchive?.member)).toEqual([DISK1, DISK2]);
      expect(guest.disks.map((d) => d.capacityBytes)).toEqual([16 * 1024 ** 3, 4 * 1024 ** 3]);
    },
  );

  it.each(['tar', 'zip'] as const)(
    '%s: a mismatch in the second .mf is refused, naming that .mf and the member',
    async (kind) => {
      const { archive, ctx, options } = await perFile(
        kind,
        `per-file-bad-${kind}`,
        Buffer.alloc(5000, 7),
      );
      const e = await failure(reader.read([archive], options, ctx));
      expect(e).toBeInstanceOf(MetadataError);
      expect(e.message).toBe(
        `${archive}:web-appliance-disk2.mf:1: SHA256 digest mismatch for "${DISK2}": the manifest says ${sha('sha256', fakeFile(DISK2, 5000))}, the file has ${sha('sha256', Buffer.alloc(5000, 7))}`,
      );
    },
  );
});

describe('OvaReader: VMware snapshot members (disk1.vmdk.000000002)', () => {
  /** web-appliance whose first disk is in the archive only as three snapshot members. */
  async function snapshots(name: string, flag: '-cf' | '-czf', top: Buffer) {
    const c = await caseDir(name);
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVA_GOLDEN, 'web-appliance.ovf', { skip: [DISK1] });
    const snaps = [0, 1, 2].map((i) => `${DISK1}.00000000${i}`);
    await fs.writeFile(path.join(stage, snaps[0] as string), fakeFile(snaps[0] as string, 1024));
    await fs.writeFile(path.join(stage, snaps[1] as string), fakeFile(snaps[1] as string, 2048));
    await fs.writeFile(path.join(stage, snaps[2] as string), top);
    // The manifest (as the corpus has it) names disk1.vmdk; each snapshot member has a line too.
    const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
    const lines = await Promise.all(
      snaps.map(async (n) => `SHA1(${n})= ${sha1(await fs.readFile(path.join(stage, n)))}\n`),
    );
    await fs.appendFile(path.join(stage, 'web-appliance.mf'), lines.join(''));
    const archive = path.join(c.dir, `${name}.ova`);
    run(['tar', '--format=ustar', flag, archive, '-C', stage, ...names, ...snaps]);
    return { ...c, archive };
  }

  it('the highest numbered member is used, and the notes say so (golden)', async () => {
    const { dir, archive, ctx, options } = await snapshots(
      'snapshots',
      '-cf',
      fakeFile(DISK1, 66048),
    );
    const guest = await reader.read([archive], options, ctx);
    await expectGolden(stable(guest), path.join(OVA_GOLDEN, 'web-appliance-snapshots.ova'), dir);
    expect(guest.disks[0]?.inArchive?.member).toBe(`${DISK1}.000000002`);
    expect(guest.notes).toContain(
      `"${DISK1}" is not in the archive: its highest numbered snapshot member "${DISK1}.000000002" is used (older: ${DISK1}.000000000, ${DISK1}.000000001)`,
    );
    const gz = await snapshots('snapshots-gz', '-czf', fakeFile(DISK1, 66048));
    const fromGz = await reader.read([gz.archive], gz.options, gz.ctx);
    expect(placeless(fromGz)).toEqual(placeless(guest));
  });

  it('the manifest line for disk1.vmdk is checked against that member', async () => {
    const bad = Buffer.alloc(66048, 3);
    const { archive, ctx, options } = await snapshots('snapshots-bad', '-cf', bad);
    const e = await failure(reader.read([archive], options, ctx));
    expect(e.message).toBe(
      `${archive}:web-appliance.mf:2: SHA1 digest mismatch for "${DISK1}": the manifest says aca10c9197f61d4e82484e0653391620688276cf, the file has ${createHash('sha1').update(bad).digest('hex')}`,
    );
  });
});

describe('OvaReader: --tmp-dir and free space', () => {
  /**
   * A tar.gz whose OVF (first, as the spec wants) references an ISO whose tar header claims
   * `size` bytes; the data is cut short, so the size is checked before any byte is written.
   */
  function isoClaiming(out: string, size: number): void {
    const script = [
      'import gzip, sys, tarfile',
      'ovf = open(sys.argv[2], "rb").read()',
      'a = tarfile.TarInfo("vmware-workstation.ovf"); a.size = len(ovf)',
      'b = tarfile.TarInfo("ubuntu-dev-file1.iso"); b.size = int(sys.argv[3])',
      'pad = b"\\0" * (-len(ovf) % 512)',
      'data = a.tobuf(tarfile.GNU_FORMAT) + ovf + pad + b.tobuf(tarfile.GNU_FORMAT) + b"\\0" * 4096',
      'open(sys.argv[1], "wb").write(gzip.compress(data))',
    ].join('\n');
    run([
      'python3',
      '-c',
      script,
      out,
      path.join(OVF_GOLDEN, 'vmware-workstation.ovf'),
      String(size),
    ]);
  }

  it('a member larger than the free space of --tmp-dir: both numbers, nothing left', async () => {
    const c = await caseDir('no-room');
    const st = await fs.statfs(c.options.tmpDir);
    const free = st.bavail * st.bsize;
    const size = free + 2 ** 40;
    const archive = path.join(c.dir, 'huge-iso.ova');
    isoClaiming(archive, size);
    const e = await failure(reader.read([archive], c.options, c.ctx));
    expect(e).toBeInstanceOf(StorageError);
    const m = new RegExp(
      `^${esc(c.options.tmpDir)}: not enough free space to extract "ubuntu-dev-file1\\.iso" from ${esc(archive)}: ${size} bytes needed, ([0-9]+) bytes free$`,
    ).exec(e.message);
    expect(m, e.message).not.toBeNull();
    expect(Math.abs(Number(m?.[1]) - free)).toBeLessThan(2 ** 30);
    expect((e as StorageError).hint).toBe(
      'free space there, or give --tmp-dir DIR on a file system with room',
    );
    expect(await fs.readdir(c.options.tmpDir)).toEqual([]);
    expect(await fs.readdir(c.ctx.tmpDir)).toEqual([]);
  });

  it('a --tmp-dir that does not exist is a usage error once a member must be extracted', async () => {
    const c = await caseDir('no-dir');
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVF_GOLDEN, 'vmware-workstation.ovf');
    const archive = path.join(c.dir, 'workstation.ova');
    run(['tar', '--format=ustar', '-czf', archive, '-C', stage, ...names]);
    const missing = path.join(c.dir, 'nope');
    const e = await failure(reader.read([archive], { tmpDir: missing }, c.ctx));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe(`--tmp-dir ${missing}: no such directory`);
  });

  it('--tmp-dir is declared by the ova reader alone', () => {
    expect(reader.optionSpecs.map((o) => [o.flag, o.key, o.type])).toEqual([
      ['tmp-dir', 'tmpDir', 'string'],
    ]);
    expect(() => reader.check(['a.ova'], { tmpDir: ' ' })).toThrow('--tmp-dir: give a directory');
  });
});

describe('OvaReader: options and nodes', () => {
  it('check() wants one file', () => {
    expect(() => reader.check([], {})).toThrow(UsageError);
    expect(() => reader.check(['a.ova', 'b.ova'], {})).toThrow(
      'the ova reader takes one OVA file, got 2 sources',
    );
  });

  it('refuses an OVA on a remote node', async () => {
    const remote = { isLocal: false, name: 'ssh://root@esx1:22' } as unknown as Node;
    const e = await failure(
      reader.read(['/vmfs/vm.ova'], {}, { node: remote, log: silent, tmpDir: root }),
    );
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe(
      'OVA /vmfs/vm.ova is on ssh://root@esx1:22: reading an OVA over SSH is not supported yet; copy it to this machine',
    );
  });
});

describe('OvaReader: hostile and broken archives', () => {
  interface Member {
    name: string;
    data?: Buffer | string;
    type?: 'symlink' | 'link';
    linkname?: string;
  }

  async function packTar(out: string, members: Member[]): Promise<void> {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
    for (const m of members) {
      if (m.type) pack.entry({ name: m.name, type: m.type, linkname: m.linkname ?? '' });
      else
        pack.entry(
          { name: m.name },
          typeof m.data === 'string' ? Buffer.from(m.data) : (m.data ?? Buffer.alloc(0)),
        );
    }
    pack.finalize();
    await done;
    await fs.writeFile(out, Buffer.concat(chunks));
  }

  function packZip(out: string, members: Member[]): void {
    const script = [
      'import json, sys, zipfile',
      'z = zipfile.ZipFile(sys.argv[1], "w")',
      'for m in json.loads(sys.argv[2]):',
      '    zi = zipfile.ZipInfo(m["name"])',
      '    zi.create_system = 3',
      '    zi.external_attr = (0o120777 if m.get("type") == "symlink" else 0o100644) << 16',
      '    z.writestr(zi, m.get("linkname") or m.get("data") or "")',
      'z.close()',
    ].join('\n');
    const json = JSON.stringify(members.map((m) => ({ ...m, data: m.data?.toString() })));
    run(['python3', '-c', script, out, json]);
  }

  let ovfText: string;
  let canary: string;
  let extDir: string;
  let ctx: ReaderContext;

  beforeAll(async () => {
    ovfText = await fs.readFile(path.join(OVA_GOLDEN, 'web-appliance.ovf'), 'utf8');
    // root/hostile/canary is what `../../canary` reaches from root/hostile/ext/v2v-load-ova-XXXXXX.
    const c = await caseDir('hostile');
    canary = path.join(c.dir, 'canary');
    extDir = c.options.tmpDir;
    ctx = c.ctx;
    await fs.writeFile(canary, 'original');
  });

  /** Reads `archive`, expecting a refusal; checks the canary and that nothing was left behind. */
  async function refused(archive: string, message: string): Promise<void> {
    const before = await listAll(root);
    const e = await failure(reader.read([archive], { tmpDir: extDir }, ctx));
    expect(e).toBeInstanceOf(MetadataError);
    expect(e.message).toBe(message);
    expect(await fs.readFile(canary, 'utf8')).toBe('original');
    // Nothing is left anywhere under the test's root (the extraction directory included).
    expect((await listAll(root)).filter((p) => !before.includes(p))).toEqual([]);
  }

  const badNames: [string, string][] = [
    ['../../canary', 'a name with ".." segments'],
    ['web/../../../canary', 'a name with ".." segments'],
    ['/abs/path/canary', 'an absolute path'],
  ];

  it.each(badNames)('tar.gz member %s is refused, naming archive and member', async (name, why) => {
    const plain = path.join(root, 'hostile', 'names.tar');
    await packTar(plain, [
      { name: 'web-appliance.ovf', data: ovfText },
      { name, data: 'pwned' },
    ]);
    const archive = path.join(
      root,
      'hostile',
      `names-${badNames.findIndex((b) => b[0] === name)}.ova`,
    );
    await fs.writeFile(archive, execFileSync('gzip', ['-c', plain]));
    await refused(
      archive,
      `${archive}: member ${JSON.stringify(name)} refused: ${why} in an archive is not accepted`,
    );
  });

  it('a plain tar member ../canary is refused too', async () => {
    const archive = path.join(root, 'hostile', 'dotdot.ova');
    await packTar(archive, [
      { name: 'web-appliance.ovf', data: ovfText },
      { name: '../canary', data: 'x' },
    ]);
    await refused(
      archive,
      `${archive}: member "../canary" refused: a name with ".." segments in an archive is not accepted`,
    );
  });

  it.each(['tar', 'tar.gz'])('a %s symlink or hard link member is refused', async (kind) => {
    for (const type of ['symlink', 'link'] as const) {
      const plain = path.join(root, 'hostile', `${type}.tar`);
      await packTar(plain, [
        { name: 'web-appliance.ovf', data: ovfText },
        { name: DISK1, type, linkname: canary },
        { name: DISK1.replace('1', '3'), data: 'pwned' },
      ]);
      const archive = path.join(root, 'hostile', `${type}-${kind}.ova`);
      await fs.writeFile(
        archive,
        kind === 'tar' ? await fs.readFile(plain) : execFileSync('gzip', ['-c', plain]),
      );
      await refused(
        archive,
        `${archive}: member "${DISK1}" is a ${type === 'symlink' ? 'symbolic link' : 'hard link'} to ${JSON.stringify(canary)}: links in an OVA are refused`,
      );
    }
  });

  it('zip members with .. segments, absolute names or S_IFLNK are refused', {
    timeout: 60_000,
  }, async () => {
    const dotdot = path.join(root, 'hostile', 'dotdot.zip');
    packZip(dotdot, [
      { name: 'web-appliance.ovf', data: ovfText },
      { name: '../../canary', data: 'pwned' },
    ]);
    await refused(
      dotdot,
      `${dotdot}: member "../../canary" refused: a name with ".." segments in an archive is not accepted`,
    );
    const abs = path.join(root, 'hostile', 'abs.zip');
    packZip(abs, [
      { name: 'web-appliance.ovf', data: ovfText },
      { name: canary, data: 'pwned' },
    ]);
    await refused(
      abs,
      `${abs}: member ${JSON.stringify(canary)} refused: an absolute path in an archive is not accepted`,
    );
    const link = path.join(root, 'hostile', 'link.zip');
    packZip(link, [
      { name: 'web-appliance.ovf', data: ovfText },
      { name: DISK1, type: 'symlink', linkname: canary },
    ]);
    await refused(
      link,
      `${link}: member "${DISK1}" is a symbolic link: links in an OVA are refused`,
    );
  });

  it('an OVF with an external entity is refused, naming archive and member', async () => {
    const archive = path.join(root, 'hostile', 'xxe.ova');
    const evil = ovfText
      .replace(
        '<Envelope ',
        `<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file://${canary}">]>\n<Envelope `,
      )
      .replace('<Name>web-appliance</Name>', '<Name>&xxe;</Name>');
    await packTar(archive, [{ name: 'web-appliance.ovf', data: evil }]);
    await refused(
      archive,
      `${archive}:web-appliance.ovf:3: XML entity declarations are not accepted (external entities and entity expansion are refused)`,
    );
  });

  it('absurd numbers fail validation, naming the OVF in the archive', async () => {
    const archive = path.join(root, 'hostile', 'huge.ova');
    await packTar(archive, [
      {
        name: 'web-appliance.ovf',
        data: ovfText.replace(
          '<rasd:VirtualQuantity>2048</rasd:VirtualQuantity>',
          `<rasd:VirtualQuantity>1${'0'.repeat(30)}</rasd:VirtualQuantity>`,
        ),
      },
      { name: DISK1, data: fakeFile(DISK1, 66048) },
      { name: DISK2, data: fakeFile(DISK2, 5000) },
    ]);
    const e = await failure(reader.read([archive], {}, ctx));
    expect(e.message).toMatch(
      new RegExp(
        `^${archive.replace(/[.]/g, '\\.')}:web-appliance\\.ovf: invalid guest description: memoryBytes: `,
      ),
    );
  });

  it('binary garbage, an empty file, a missing file', async () => {
    const garbage = path.join(root, 'hostile', 'garbage.ova');
    await fs.writeFile(garbage, fakeFile('garbage', 4096));
    const e = await failure(reader.read([garbage], {}, ctx));
    expect(e.message).toMatch(
      new RegExp(
        `^${garbage.replace(/[.]/g, '\\.')}: not an OVA: not a tar, tar.gz, tar.xz or zip archive \\(starts with [0-9a-f]{16}\\)$`,
      ),
    );
    const empty = path.join(root, 'hostile', 'empty.ova');
    await fs.writeFile(empty, '');
    expect((await failure(reader.read([empty], {}, ctx))).message).toBe(
      `${empty}: empty file, expected an OVA archive`,
    );
    const missing = path.join(root, 'hostile', 'missing.ova');
    expect((await failure(reader.read([missing], {}, ctx))).message).toBe(
      `${missing}: no such file`,
    );
  });

  it('truncated tar, tar.gz and a corrupt tar.xz are errors naming the archive', async () => {
    const { archive: good } = await buildAppliance('tar', {}, 'truncated');
    const bytes = await fs.readFile(good);
    const cut = path.join(root, 'hostile', 'truncated.ova');
    await fs.writeFile(cut, bytes.subarray(0, 3 * 512 + 30000));
    await refused(cut, `${cut}: corrupt or truncated tar archive: Unexpected end of data`);

    const gz = execFileSync('gzip', ['-c', good]);
    const cutGz = path.join(root, 'hostile', 'truncated-gz.ova');
    await fs.writeFile(cutGz, gz.subarray(0, Math.floor(gz.length / 2)));
    await refused(cutGz, `${cutGz}: corrupt or truncated tar.gz archive: unexpected end of file`);

    const xz = execFileSync('xz', ['-c', good]);
    for (let i = 200; i < 400; i++) xz[i] = (xz[i] ?? 0) ^ 0x55;
    const badXz = path.join(root, 'hostile', 'corrupt-xz.ova');
    await fs.writeFile(badXz, xz);
    const e = await failure(reader.read([badXz], {}, ctx));
    expect(e).toBeInstanceOf(MetadataError);
    expect(e.message).toMatch(
      new RegExp(`^${badXz.replace(/[.]/g, '\\.')}: xz -dc exited with code 1: .*[Cc]orrupt`),
    );
    expect(e).not.toBeInstanceOf(CommandNotFoundError);
  });

  it('a tar.xz without the xz program is a CommandNotFoundError', async () => {
    const { archive, ctx: c } = await buildAppliance('tar-xz', {}, 'no-xz');
    const saved = process.env.PATH;
    process.env.PATH = path.join(root, 'empty-path');
    try {
      const e = await failure(reader.read([archive], {}, c));
      expect(e).toBeInstanceOf(CommandNotFoundError);
      expect(e.message).toMatch(
        /^`xz -dc -- .*` exited with code undefined: xz: command not found$/,
      );
    } finally {
      process.env.PATH = saved;
    }
  });
});
