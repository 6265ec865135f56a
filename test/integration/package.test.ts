/**
 * The typed library as a user gets it: `npm pack` of this package (dist/ is built by the
 * global set-up), installed from the tarball into a fresh project, then imported by its name
 * in a separate Node process (no vitest set-up, so no reflect polyfill loaded beforehand).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/** Run in the consumer project: every kind of export, used for real. */
const PROBE = `
const lib = await import('v2v-load');
const { NodeFactory, LocalNode, QemuImg, CopyMode, runMode, readerFor, DiskReader, VmxReader,
  LibvirtConnection, Domain, READER_KINDS, createRootContainer, createRunContainer, TOKENS } = lib;
const dir = process.env.PROBE_DIR;
const nodes = new NodeFactory();
const node = await nodes.get({});
await node.run(['qemu-img', 'create', '-q', '-f', 'qcow2', dir + '/a.qcow2', '16M']);
const qemu = new QemuImg(node);
const info = await qemu.info({ path: dir + '/a.qcow2', format: 'qcow2' });
const copied = await runMode(new CopyMode(), qemu, {
  source: { path: dir + '/a.qcow2', format: 'qcow2' },
  target: { path: dir + '/b.raw', format: 'raw' },
});
const log = { debug() {}, info() {}, warn() {}, error() {} };
const reader = readerFor('disk');
const guest = await reader.read([dir + '/a.qcow2'], { name: 'probe' }, { node, log, tmpDir: dir });
const conn = new LibvirtConnection(node, 'test:///default');
const dom = await conn.lookup('test');
const root = createRootContainer(log, nodes);
const run = await createRunContainer(root, {});
console.log(JSON.stringify({
  local: node instanceof LocalNode,
  virtualBytes: info.virtualBytes,
  copied,
  readerIsDisk: reader instanceof DiskReader,
  vmx: new VmxReader().kind,
  guest: { name: guest.name, disks: guest.disks.map((d) => d.format) },
  domain: dom instanceof Domain ? dom.name : null,
  kinds: READER_KINDS,
  readers: run.resolveAll(TOKENS.MetadataReader).length,
}));
await nodes.closeAll();
`;

describe('the v2v-load package', () => {
  let tmp: string;
  let project: string;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-package-'));
    project = path.join(tmp, 'consumer');
    await fs.mkdir(project);
    await fs.writeFile(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
  });
  afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

  it('installs from its tarball, and importing it by name gives nodes, QemuImg, readers, libvirt', async () => {
    const { stdout: packed } = await exec('npm', ['pack', '--json', '--pack-destination', tmp], {
      cwd: ROOT,
    });
    const [{ filename, files }] = JSON.parse(packed) as [
      { filename: string; files: { path: string }[] },
    ];
    const paths = files.map((f) => f.path);
    expect(paths).toContain('dist/index.js');
    expect(paths).toContain('dist/index.d.ts');
    expect(paths).toContain('bin/v2v-load.js');
    expect(paths.filter((p) => p.startsWith('src/') || p.startsWith('test/'))).toEqual([]);

    // The dependencies come from npm's cache (filled by npm ci); ssh2's optional native
    // helpers are not needed.
    await exec(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--omit=optional',
        '--ignore-scripts',
        path.join(tmp, filename),
      ],
      { cwd: project, timeout: 240_000 },
    );

    // A bare import, as the README promises (this used to throw "tsyringe requires a reflect
    // polyfill").
    const bare = await exec(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('v2v-load'); console.log(typeof m.QemuImg)",
      ],
      { cwd: project },
    );
    expect(bare.stdout.trim()).toBe('function');

    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', PROBE], {
      cwd: project,
      env: { ...process.env, PROBE_DIR: tmp },
      timeout: 120_000,
    });
    expect(JSON.parse(stdout)).toEqual({
      local: true,
      virtualBytes: 16 * 1024 * 1024,
      copied: { path: path.join(tmp, 'b.raw'), format: 'raw' },
      readerIsDisk: true,
      vmx: 'vmx',
      guest: { name: 'probe', disks: ['qcow2'] },
      domain: 'test',
      kinds: ['vmx', 'ova', 'ovf', 'libvirtxml', 'libvirt', 'disk'],
      readers: 6,
    });
    // The copy is a real raw image of the right size.
    expect((await fs.stat(path.join(tmp, 'b.raw'))).size).toBe(16 * 1024 * 1024);

    // The command is installed too, and runs.
    const bin = await exec(path.join(project, 'node_modules/.bin/v2v-load'), ['--version'], {
      cwd: project,
    });
    expect(bin.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
