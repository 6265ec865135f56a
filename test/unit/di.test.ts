import type { DependencyContainer } from 'tsyringe';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { createRootContainer, createRunContainer } from '../../src/di/composition-root.js';
import { TOKENS } from '../../src/di/tokens.js';
import { Doctor } from '../../src/doctor/doctor.js';
import type { Logger } from '../../src/log/logger.js';
import { READER_KINDS, type SourceGuest } from '../../src/metadata/model.js';
import type { MetadataReader } from '../../src/metadata/reader.js';
import { readerFor } from '../../src/metadata/registry.js';
import { VmxReader } from '../../src/metadata/vmx/vmx-reader.js';
import type { Node } from '../../src/node/node.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import { LibvirtConnection } from '../../src/provisioning/libvirt/connection.js';
import { DEFAULT_LIBVIRT_URI } from '../../src/provisioning/libvirt/virsh.js';
import {
  CowMode,
  chooseStorageMode,
  STORAGE_MODE_NAMES,
  type StorageMode,
  type StorageRequest,
} from '../../src/storage/modes/index.js';
import { QemuImg } from '../../src/storage/qemu-img.js';
import { cli } from '../harness/cli.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe('composition root', () => {
  it('gives each run its own container sharing the root node factory', async () => {
    const root = createRootContainer(silent);
    const a = await createRunContainer(root, {});
    const b = await createRunContainer(root, {});
    expect(a).not.toBe(b);
    expect(a.resolve(TOKENS.NodeFactory)).toBe(root.resolve(TOKENS.NodeFactory));
    expect(a.resolve<Node>(TOKENS.Node).name).toBe('local');
    const doctor = a.resolve<Doctor>(TOKENS.Doctor);
    expect(doctor).toBeInstanceOf(Doctor);
    expect(a.resolve(TOKENS.Doctor)).not.toBe(doctor); // a new one per resolve, no hidden state
    expect(root.isRegistered(TOKENS.Node)).toBe(false); // nothing leaks into the root
  });

  it('injects the run node into the doctor (explicit tokens, no decorator metadata)', async () => {
    const root = createRootContainer(silent, new NodeFactory());
    const run = await createRunContainer(root, {});
    const report = await run.resolve<Doctor>(TOKENS.Doctor).run({}, [
      {
        name: 'echo',
        required: true,
        run: async ({ node }) => ({
          ok: true,
          detail: (await node.run(['echo', node.name])).stdout.trim(),
        }),
      },
    ]);
    expect(report).toMatchObject({
      node: 'local',
      ok: true,
      checks: [{ name: 'echo', detail: 'local' }],
    });
  });
});

describe('modules in the container', () => {
  it('registers one reader per input kind and one storage mode per name', () => {
    const root = createRootContainer(silent);
    const readers = root.resolveAll<MetadataReader>(TOKENS.MetadataReader);
    expect(readers.map((r) => r.kind).sort()).toEqual([...READER_KINDS].sort());
    const modes = root.resolveAll<StorageMode>(TOKENS.StorageMode);
    expect(modes.map((m) => m.name).sort()).toEqual([...STORAGE_MODE_NAMES].sort());
    expect(readerFor('vmx', readers)).toBeInstanceOf(VmxReader);
    expect(chooseStorageMode(modes, 'cow')).toBeInstanceOf(CowMode);
  });

  it('makes QemuImg and the libvirt connection per run, on the run node with its settings', async () => {
    const root = createRootContainer(silent);
    const a = await createRunContainer(root, {}, { allowedBackingDirs: ['/srv/masters'] });
    const b = await createRunContainer(root, {}, { libvirtUri: 'test:///default' });
    const qa = a.resolve<QemuImg>(TOKENS.QemuImg);
    expect(qa).toBeInstanceOf(QemuImg);
    expect(qa.node).toBe(a.resolve(TOKENS.Node));
    expect(qa.allowedDirs).toEqual(['/srv/masters']);
    expect(b.resolve<QemuImg>(TOKENS.QemuImg).allowedDirs).toEqual([]);
    const ca = a.resolve<LibvirtConnection>(TOKENS.LibvirtConnection);
    expect(ca).toBeInstanceOf(LibvirtConnection);
    expect(ca.uri).toBe(DEFAULT_LIBVIRT_URI);
    expect(b.resolve<LibvirtConnection>(TOKENS.LibvirtConnection).uri).toBe('test:///default');
    expect(() => root.resolve(TOKENS.QemuImg)).toThrow(); // no node outside a run
  });

  it('the choice functions refuse a kind or mode nobody registered, naming it', () => {
    expect(() => readerFor('ova', [new VmxReader()])).toThrow(
      /-i ova: no reader of this kind is registered/,
    );
    expect(() => chooseStorageMode([new CowMode()], 'copy')).toThrow(
      /copy: no such storage mode is registered/,
    );
  });
});

/** Runs the CLI in-process with `configure` applied to its root container. */
async function cliWith(configure: (root: DependencyContainer) => void, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(
    args,
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    { configure },
  );
  return { status, stdout, stderr };
}

describe('a command uses the module the container gives it', () => {
  it('inspect reads with a reader registered in place of the vmx reader', async () => {
    const read = vi.fn(
      async (source: string[]): Promise<SourceGuest> => ({
        name: 'from-the-stand-in',
        hypervisor: 'vmware',
        firmware: 'bios',
        memoryBytes: 512 * 1024 * 1024,
        vcpus: 3,
        disks: [],
        cdroms: [],
        nics: [],
        notes: [],
        origin: { kind: 'vmx', source: source[0] ?? '' },
      }),
    );
    const standIn: MetadataReader = { kind: 'vmx', check: () => {}, read };
    const r = await cliWith(
      (root) => root.register(TOKENS.MetadataReader, { useValue: standIn }),
      'inspect',
      '/nowhere/guest.vmx',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(read).toHaveBeenCalledTimes(1);
    expect(read.mock.calls[0]?.[0]).toEqual(['/nowhere/guest.vmx']);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'from-the-stand-in', vcpus: 3 });
    // Without the stand-in, the real vmx reader runs and finds no file.
    const real = await cli('inspect', '/nowhere/guest.vmx');
    expect(real.status).toBe(1);
    expect(real.stderr).toContain('/nowhere/guest.vmx');
  });

  it('image copy runs the copy mode registered in place of the built-in one', async () => {
    const prepared: StorageRequest[] = [];
    const standIn: StorageMode = {
      name: 'copy',
      prepare: async (_qemu, req) => {
        prepared.push(req);
        return { work: req.target, finish: async () => req.target, abort: async () => {} };
      },
    };
    const r = await cliWith(
      (root) => root.register(TOKENS.StorageMode, { useValue: standIn }),
      'image',
      'copy',
      '/nowhere/src.img',
      '/nowhere/dst.qcow2',
      '--source-format',
      'raw',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('/nowhere/dst.qcow2 (qcow2)\n');
    expect(prepared).toEqual([
      expect.objectContaining({
        source: { path: '/nowhere/src.img', format: 'raw' },
        target: { path: '/nowhere/dst.qcow2', format: 'qcow2' },
      }),
    ]);
  });
});
