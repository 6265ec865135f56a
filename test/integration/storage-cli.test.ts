/**
 * `v2v-load image info|copy|cow|find` with the real qemu-img, on this machine and with
 * `--host` over the test sshd.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cli as cliSpread } from '../harness/cli.js';
import {
  canary,
  NODE_KINDS,
  names,
  qemuImg,
  randomRaw,
  sameData,
  sha256File,
  tempDir,
} from './storage-helpers.js';

/** The CLI in this process, argv as an array. */
const cli = (args: string[]) => cliSpread(...args);

const MiB = 1024 * 1024;

describe.each(NODE_KINDS)('v2v-load image on the %s node', (kind) => {
  let root: string;
  let nodeArgs: string[];

  beforeAll(async () => {
    root = await tempDir(`cli-${kind}`);
    const sshd = inject('sshd');
    nodeArgs =
      kind === 'local'
        ? []
        : ['--host', sshd.url, '--identity', sshd.identity, '--known-hosts', sshd.knownHosts];
    await randomRaw(path.join(root, 'src.raw'), 8, 2);
    await qemuImg([
      'convert',
      '-f',
      'raw',
      '-O',
      'qcow2',
      path.join(root, 'src.raw'),
      path.join(root, 'base-v1.qcow2'),
    ]);
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });
  const at = (n: string) => path.join(root, n);

  it('info --json: format, sizes, chain', async () => {
    await qemuImg([
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'base-v1.qcow2',
      '-F',
      'qcow2',
      at('top.qcow2'),
    ]);
    const r = await cli(['image', 'info', at('top.qcow2'), '--json', ...nodeArgs]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ path: at('top.qcow2'), format: 'qcow2', virtualBytes: 8 * MiB });
    expect(j.chain.map((c: { path: string }) => c.path)).toEqual([
      at('top.qcow2'),
      at('base-v1.qcow2'),
    ]);
    const human = await cli(['image', 'info', at('top.qcow2'), ...nodeArgs]);
    expect(human.stdout).toContain(
      `chain:    ${at('top.qcow2')} (qcow2) -> ${at('base-v1.qcow2')} (qcow2)`,
    );
  });

  it('copy --json prints progress events as JSON lines, then done', async () => {
    const dst = at('copy.raw');
    const r = await cli([
      'image',
      'copy',
      at('base-v1.qcow2'),
      dst,
      '--format',
      'raw',
      '--json',
      ...nodeArgs,
    ]);
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.at(-1)).toEqual({ event: 'done', path: dst, format: 'raw' });
    const progress = lines.filter((l) => l.event === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ event: 'progress', percent: 100 });
    expect(await sameData(at('src.raw'), 'raw', dst, 'raw')).toBe(true);
    const again = await cli(['image', 'copy', at('base-v1.qcow2'), dst, ...nodeArgs]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`${dst}: target exists already; not overwritten`);
  });

  it('cow makes an overlay over the master', async () => {
    const master = at('base-v1.qcow2');
    const sha = await sha256File(master);
    const dst = at('pc1_12-v1.qcow2');
    const r = await cli(['image', 'cow', master, dst, '--json', ...nodeArgs]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ path: dst, format: 'qcow2', backing: master });
    const info = JSON.parse(await qemuImg(['info', '--output=json', '-f', 'qcow2', dst]));
    expect([info['backing-filename'], info['backing-filename-format']]).toEqual([master, 'qcow2']);
    expect(await sha256File(master)).toBe(sha);
  });

  it('find --json: exact name, files and size; not found is exit 1', async () => {
    const ds = at('ds');
    await fs.mkdir(ds);
    await fs.copyFile(at('base-v1.qcow2'), path.join(ds, 'img-v10.qcow2'));
    await fs.writeFile(path.join(ds, 'img-v1.vmx'), 'x');
    const repo = at('repo');
    await fs.mkdir(path.join(repo, 'img-v1'), { recursive: true });
    await fs.copyFile(at('base-v1.qcow2'), path.join(repo, 'img-v1', 'img-v1.qcow2'));
    const r = await cli([
      'image',
      'find',
      'img-v1',
      '--datastore',
      ds,
      '--repository',
      repo,
      '--json',
      ...nodeArgs,
    ]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      name: 'img-v1',
      found: true,
      where: 'repository',
      entry: { path: path.join(repo, 'img-v1', 'img-v1.qcow2'), format: 'qcow2' },
      files: [path.join(repo, 'img-v1', 'img-v1.qcow2')],
    });
    expect(j.size.virtualBytes).toBe(8 * MiB);
    expect(j.size.mib).toBe(Math.ceil(j.size.bytes / MiB));
    const none = await cli(['image', 'find', 'img-v', '--datastore', ds, '--json', ...nodeArgs]);
    expect(none.status).toBe(1);
    expect(JSON.parse(none.stdout)).toEqual({ name: 'img-v', found: false });
  });

  it('a hostile backing file is refused with a clear error; nothing is written', async () => {
    const c = await canary(root);
    const evil = at('evil.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', c.file, '-F', 'raw', evil]);
    const before = await names(root);
    const r = await cli(['image', 'copy', evil, at('evil.raw'), '--format', 'raw', ...nodeArgs]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `${evil}: backing file ${c.file} (${c.file}) is outside the allowed directories`,
    );
    expect(r.stderr).toContain('hint:');
    expect(await names(root)).toEqual(before);
    expect(await sha256File(c.file)).toBe(c.sha);
    const allowed = await cli([
      'image',
      'info',
      evil,
      '--allow-dir',
      path.dirname(c.file),
      '--json',
      ...nodeArgs,
    ]);
    expect(allowed.status).toBe(0);
    expect(JSON.parse(allowed.stdout).chain[1]).toMatchObject({ path: c.file, format: 'raw' });
  });

  it('copy refuses a truncated qcow2: exit 1, the file and the damage named, no output', async () => {
    const cut = at('cut.qcow2');
    await randomRaw(at('cut-data.raw'), 4);
    await qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', at('cut-data.raw'), cut]);
    await fs.truncate(cut, MiB);
    const before = await names(root);
    const r = await cli(['image', 'copy', cut, at('cut-out.raw'), '--format', 'raw', ...nodeArgs]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`${cut}: damaged qcow2 image: qemu-img check found [1-9]\\d* corruptions`),
    );
    expect(r.stdout).toBe('');
    expect(await names(root)).toEqual(before);
  });

  it('copy refuses random bytes named .vmdk unless --source-format says raw', async () => {
    const garbage = at('garbage.vmdk');
    await fs.writeFile(garbage, randomBytes(100 * 1024));
    const before = await names(root);
    const r = await cli(['image', 'copy', garbage, at('garbage.qcow2'), ...nodeArgs]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `${garbage}: the name says vmdk but the content is not a VMDK (no KDMV magic, no ` +
        'descriptor); give --source-format raw if it really is raw',
    );
    expect(await names(root)).toEqual(before);
    const info = await cli(['image', 'info', garbage, ...nodeArgs]);
    expect(info.status).toBe(1);
    expect(info.stderr).toContain(`${garbage}: the name says vmdk but the content is not a VMDK`);
    // a qcow2 named .raw: both formats named
    await fs.copyFile(at('base-v1.qcow2'), at('posing.raw'));
    const posing = await cli(['image', 'info', at('posing.raw'), ...nodeArgs]);
    expect(posing.stderr).toContain(
      `${at('posing.raw')}: the name says raw but the content is a qcow2 image (QFI\\xfb magic); ` +
        'give --source-format qcow2 if it really is qcow2',
    );
    // stated: copied as what the user says
    const ok = await cli([
      'image',
      'copy',
      garbage,
      at('garbage.qcow2'),
      '--source-format',
      'raw',
      '--json',
      ...nodeArgs,
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(await sameData(garbage, 'raw', at('garbage.qcow2'), 'qcow2')).toBe(true);
  });
});
