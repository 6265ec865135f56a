import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandNotFoundError, MetadataError, UsageError } from '../../src/errors.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import { detectArchiveKind } from '../../src/metadata/ovf/ova-archive.js';
import { OvaReader } from '../../src/metadata/ovf/ova-reader.js';
import type { ReaderContext } from '../../src/metadata/reader.js';
import { LocalNode } from '../../src/node/local-node.js';
import type { Node } from '../../src/node/node.js';
import { expectGolden } from '../harness/golden.js';
import { fakeFile, references } from '../harness/ovf-fixtures.js';

const OVA_GOLDEN = path.join(import.meta.dirname, '../golden/metadata/ova');
const OVF_GOLDEN = path.join(import.meta.dirname, '../golden/metadata/ovf');
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const reader = new OvaReader();

const DISK1 = 'web-appliance-disk1.vmdk';
const DISK2 = 'web-appliance-disk2.vmdk';

let root: string;

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

/** A fresh case directory under the test's root, with its own private tmpDir. */
async function caseDir(name: string): Promise<{ dir: string; ctx: ReaderContext }> {
  const dir = path.join(root, name);
  await fs.mkdir(path.join(dir, 'tmp'), { recursive: true });
  return { dir, ctx: { node: new LocalNode(), log: silent, tmpDir: path.join(dir, 'tmp') } };
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
  return JSON.parse(JSON.stringify(guest).replace(/\/ova-[A-Za-z0-9]{6}\//g, '/ova-XXXXXX/'));
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
    '%s: extracted into the private tmpDir, same model',
    async (kind) => {
      const { dir, ctx, archive } = await buildAppliance(kind);
      const guest = await reader.read([archive], {}, ctx);
      models.set(kind, guest);
      await expectGolden(stable(guest), path.join(OVA_GOLDEN, `web-appliance-${kind}.ova`), dir);
      for (const d of guest.disks) {
        expect(d.path.startsWith(`${ctx.tmpDir}${path.sep}ova-`)).toBe(true);
        expect(d.inArchive?.offset).toBeUndefined();
        const name = d.inArchive?.member ?? '';
        expect((await fs.readFile(d.path)).equals(fakeFile(name, d.inArchive?.size ?? 0))).toBe(
          true,
        );
        expect((await fs.stat(d.path)).mode & 0o777).toBe(0o600);
      }
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

  it('VirtualBox order (manifest last): digests are computed after the pass', async () => {
    const c = await caseDir('vbox-order');
    const stage = path.join(c.dir, 'stage');
    await stageFiles(stage, OVA_GOLDEN, 'web-appliance.ovf');
    const archive = path.join(c.dir, 'vbox-order.ova');
    run([
      'tar',
      '--format=ustar',
      '-cf',
      archive,
      '-C',
      stage,
      'web-appliance.ovf',
      DISK1,
      DISK2,
      'web-appliance.mf',
    ]);
    const guest = await reader.read([archive], {}, c.ctx);
    expect(placeless(guest)).toEqual(placeless(models.get('tar') as SourceGuest));

    await fs.writeFile(path.join(stage, DISK1), Buffer.alloc(66048, 1));
    const bad = path.join(c.dir, 'vbox-order-bad.ova');
    run([
      'tar',
      '--format=ustar',
      '-cf',
      bad,
      '-C',
      stage,
      'web-appliance.ovf',
      DISK1,
      DISK2,
      'web-appliance.mf',
    ]);
    const e = await failure(reader.read([bad], {}, c.ctx));
    expect(e.message).toMatch(
      new RegExp(
        `^${bad.replace(/[.]/g, '\\.')}:web-appliance\\.mf:2: SHA1 digest mismatch for "${DISK1}"`,
      ),
    );
  });

  it('an ISO in a plain tar is copied out; a snapshot chain too', async () => {
    const c = await caseDir('iso');
    const stage = path.join(c.dir, 'stage');
    const names = await stageFiles(stage, OVF_GOLDEN, 'vmware-workstation.ovf');
    const archive = path.join(c.dir, 'workstation.ova');
    run(['tar', '--format=ustar', '-cf', archive, '-C', stage, ...names]);
    const guest = await reader.read([archive], {}, c.ctx);
    const iso = guest.cdroms[0]?.path ?? '';
    expect(iso.startsWith(`${c.ctx.tmpDir}${path.sep}ova-`)).toBe(true);
    expect((await fs.readFile(iso)).equals(fakeFile('ubuntu-dev-file1.iso', 4096))).toBe(true);
    expect(guest.disks[0]?.path).toBe(archive);

    const chainNames = await stageFiles(
      path.join(c.dir, 'chain'),
      OVF_GOLDEN,
      'snapshot-chain.ovf',
    );
    const chainOva = path.join(c.dir, 'chain.ova');
    run(['tar', '--format=ustar', '-cf', chainOva, '-C', path.join(c.dir, 'chain'), ...chainNames]);
    const chained = await reader.read([chainOva], {}, c.ctx);
    const top = chained.disks[0];
    expect(path.basename(top?.path ?? '')).toBe('win2019-delta2.vmdk');
    expect(top?.backingChain.map((p) => path.basename(p))).toEqual([
      'win2019-delta1.vmdk',
      'win2019-base.vmdk',
    ]);
    expect(
      (await fs.readFile(top?.backingChain[1] ?? '')).equals(fakeFile('win2019-base.vmdk', 73728)),
    ).toBe(true);
    expect(chained.disks[1]?.path).toBe(chainOva);
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
  let tmpDir: string;
  let ctx: ReaderContext;

  beforeAll(async () => {
    ovfText = await fs.readFile(path.join(OVA_GOLDEN, 'web-appliance.ovf'), 'utf8');
    // root/hostile/canary is what `../../canary` reaches from root/hostile/tmp/ova-XXXXXX.
    const c = await caseDir('hostile');
    canary = path.join(c.dir, 'canary');
    tmpDir = c.ctx.tmpDir;
    ctx = c.ctx;
    await fs.writeFile(canary, 'original');
  });

  /** Reads `archive`, expecting a refusal; checks the canary and that nothing was written outside tmpDir/ova-*. */
  async function refused(archive: string, message: string): Promise<void> {
    const before = await listAll(root);
    const e = await failure(reader.read([archive], {}, ctx));
    expect(e).toBeInstanceOf(MetadataError);
    expect(e.message).toBe(message);
    expect(await fs.readFile(canary, 'utf8')).toBe('original');
    const created = (await listAll(root)).filter((p) => !before.includes(p));
    for (const p of created) expect(p.startsWith(`${tmpDir}${path.sep}ova-`)).toBe(true);
    expect(created.filter((p) => path.basename(p) === 'canary')).toEqual([]);
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

  it('zip members with .. segments, absolute names or S_IFLNK are refused', async () => {
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
