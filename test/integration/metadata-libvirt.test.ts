/**
 * The live `libvirt` reader against the real libvirtd (started by the global set-up): a domain
 * defined (never started) with a qcow2 file disk, a storage-pool volume, a missing disk, a CD-ROM
 * and a bridge NIC, read on the local node and through the SSH node. Everything the test
 * defines is undefined/destroyed in afterAll, even when a test fails.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { LibvirtReader } from '../../src/metadata/libvirt/libvirt-reader.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import type { ReaderContext } from '../../src/metadata/reader.js';
import { LocalNode } from '../../src/node/local-node.js';
import type { Node } from '../../src/node/node.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import { parseSshUrl } from '../../src/node/node-spec.js';
import { expectGolden } from '../harness/golden.js';

const exec = promisify(execFile);
const URI = 'qemu:///system';
const GOLDEN_DIR = path.join(import.meta.dirname, '../golden/metadata/libvirt');
const TEMPLATE = path.join(GOLDEN_DIR, 'v2vtest-domain.xml');

const suffix = randomBytes(4).toString('hex');
const NAME = `v2vtest-meta-${suffix}`;
const POOL = `v2vtest-pool-${suffix}`;
const UUID = randomUUID();

const sshd = inject('sshd');
const factory = new NodeFactory();
const reader = new LibvirtReader();
const silent = { debug() {}, info() {}, warn() {}, error() {} };
let dir: string;

function virsh(...args: string[]) {
  return exec('virsh', ['-c', URI, ...args], { timeout: 120_000 });
}

function ctx(node: Node): ReaderContext {
  return { node, log: silent, tmpDir: dir };
}

/** The random words of this run, replaced by fixed ones so the golden files are stable. */
function stable(guest: SourceGuest): SourceGuest {
  const json = JSON.stringify(guest)
    .split(suffix)
    .join('RANDOM')
    .split(UUID)
    .join('00000000-0000-4000-8000-000000000000');
  return JSON.parse(json) as SourceGuest;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-meta-libvirt-'));
  await fs.chmod(dir, 0o755); // libvirt-qemu must be able to search it
  await exec('qemu-img', ['create', '-f', 'qcow2', path.join(dir, 'disk.qcow2'), '64M']);
  await fs.writeFile(path.join(dir, 'install.iso'), '');
  await fs.mkdir(path.join(dir, 'pool'), { mode: 0o755 });
  await virsh('pool-create-as', POOL, 'dir', '--target', path.join(dir, 'pool'));
  await virsh('vol-create-as', POOL, 'data.qcow2', '16M', '--format', 'qcow2');
  const xml = (await fs.readFile(TEMPLATE, 'utf8'))
    .replaceAll('@NAME@', NAME)
    .replaceAll('@UUID@', UUID)
    .replaceAll('@DIR@', dir)
    .replaceAll('@POOL@', POOL);
  await fs.writeFile(path.join(dir, 'domain.xml'), xml);
  await virsh('define', path.join(dir, 'domain.xml'));
});

afterAll(async () => {
  await factory.closeAll();
  await virsh('undefine', '--', NAME).catch(() => undefined);
  await virsh('pool-destroy', '--', POOL).catch(() => undefined);
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  const { stdout: domains } = await virsh('list', '--all', '--name');
  const { stdout: pools } = await virsh('pool-list', '--all', '--name');
  expect(domains).not.toContain(NAME);
  expect(pools).not.toContain(POOL);
});

describe('libvirt reader against libvirtd', () => {
  let fromLocal: SourceGuest;

  it('reads a defined domain on the local node', async () => {
    fromLocal = await reader.read([NAME], {}, ctx(new LocalNode()));
    expect(fromLocal.name).toBe(NAME);
    expect(fromLocal.uuid).toBe(UUID);
    expect(fromLocal.hypervisor).toBe('kvm');
    expect(fromLocal.disks.map((d) => [d.slot, d.path, d.format])).toEqual([
      ['vda', path.join(dir, 'disk.qcow2'), 'qcow2'],
      ['vdb', path.join(dir, 'pool/data.qcow2'), 'qcow2'],
      ['vdc', path.join(dir, 'missing.raw'), 'raw'],
    ]);
    expect(fromLocal.notes).toContain(`disk vdc: ${path.join(dir, 'missing.raw')} does not exist`);
    expect(fromLocal.cdroms).toEqual([
      { bus: 'ide', slot: 'hdc', path: path.join(dir, 'install.iso') },
    ]);
    await expectGolden(stable(fromLocal), TEMPLATE, dir);
  });

  it('reads the same domain through the SSH node', async () => {
    const node = await factory.get({
      ssh: parseSshUrl(sshd.url),
      identity: sshd.identity,
      knownHosts: sshd.knownHosts,
    });
    const fromSsh = await reader.read([NAME], { connect: URI }, ctx(node));
    expect(fromSsh).toEqual(fromLocal ?? (await reader.read([NAME], {}, ctx(new LocalNode()))));
  });

  it('an unknown domain is an error naming the domain and the URI', async () => {
    const missing = `${NAME}-missing`;
    const err = (await reader
      .read([missing], {}, ctx(new LocalNode()))
      .catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(MetadataError);
    expect(err.message).toContain(`libvirt domain "${missing}"`);
    expect(err.message).toContain(URI);
    expect(err.message).toContain('no such domain');
  });
});
