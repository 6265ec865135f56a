/**
 * The domain API against the real libvirtd, run on the local node and on the SSH node
 * (domain-local.test.ts, domain-ssh.test.ts): one tiny guest per node that really boots,
 * reboots and powers off on the ACPI button. Every object is named v2vl3-<kind>-...
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/node/node.js';
import { LibvirtConnection } from '../../src/provisioning/libvirt/connection.js';
import type { Domain } from '../../src/provisioning/libvirt/domain.js';
import { buildDomainXml } from '../../src/provisioning/libvirt/domain-xml-types.js';
import {
  isAlreadyExists,
  isNoAgent,
  isNotFound,
  isOperationInvalid,
  LibvirtError,
} from '../../src/provisioning/libvirt/errors.js';
import {
  buildTinyGuest,
  TINY_BOOT_MARKER,
  TINY_POWEROFF_MARKER,
  TINY_READY_MARKER,
  type TinyGuestFiles,
  tinyGuestDefinition,
  waitForConsole,
} from '../harness/tiny-guest.js';

const exec = promisify(execFile);
const BOOT_TIMEOUT_MS = 90_000;

async function waitForState(dom: Domain, state: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await dom.getState();
    if (s.state === state || Date.now() > deadline) return `${s.state} (${s.reason})`;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Undefines (and destroys) every domain whose name starts with `prefix`. */
async function cleanup(conn: LibvirtConnection, prefix: string): Promise<void> {
  for (const d of await conn.listDomains()) {
    if (!d.name.startsWith(prefix)) continue;
    const dom = await conn.lookupByUuid(d.uuid).catch(() => undefined);
    if (!dom) continue;
    await dom.destroy().catch(() => undefined);
    await dom.undefine({ snapshotsMetadata: true, managedSave: true }).catch(() => undefined);
  }
}

export function domainSuite(kind: 'local' | 'ssh', getNode: () => Promise<Node>): void {
  const prefix = `v2vl3-${kind}-`;

  describe(`domain API on the ${kind} node`, () => {
    let node: Node;
    let conn: LibvirtConnection;
    let files: TinyGuestFiles;
    let dir: string;
    let dom: Domain;
    let consoleLog: string;
    const name = `${prefix}tiny`;
    const netName = `${prefix}net`;
    const bridge = `v2vl3${kind.slice(0, 1)}0`;
    const mac = `52:54:00:3a:00:0${kind === 'local' ? '1' : '2'}`;
    const bootCount = async (): Promise<number> => {
      const st = await node.stat(consoleLog);
      if (!st) return 0;
      return (await node.readFile(consoleLog)).toString('utf8').split(TINY_READY_MARKER).length - 1;
    };

    beforeAll(async () => {
      node = await getNode();
      conn = new LibvirtConnection(node);
      files = await buildTinyGuest();
      dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
      await fs.chmod(dir, 0o755);
      consoleLog = path.join(dir, 'console.log');
      await exec('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dir, 'disk.qcow2'), '16M']);
      await fs.chmod(path.join(dir, 'disk.qcow2'), 0o666);
      await cleanup(conn, prefix);
      // An isolated network (no forward, no DHCP): the guest's NIC reaches nothing.
      await node.run(['virsh', '-c', conn.uri, 'net-destroy', netName], { reject: false });
      const netXml = path.join(dir, 'net.xml');
      await fs.writeFile(
        netXml,
        `<network><name>${netName}</name><bridge name='${bridge}' stp='off'/></network>`,
      );
      await node.run(['virsh', '-c', conn.uri, 'net-create', netXml]);
    });

    afterAll(async () => {
      if (conn) await cleanup(conn, prefix);
      if (node)
        await node.run(['virsh', '-c', conn.uri, 'net-destroy', netName], { reject: false });
      if (dir) await fs.rm(dir, { recursive: true, force: true });
    });

    it('defines a domain from a typed object; state "shut off", persistent, inactive', async () => {
      const def = tinyGuestDefinition(name, files, consoleLog);
      def.disks = [
        {
          device: 'disk',
          source: path.join(dir, 'disk.qcow2'),
          format: 'qcow2',
          target: 'vda',
          bus: 'virtio',
        },
      ];
      def.interfaces = [{ network: netName, mac, model: 'virtio' }];
      dom = await conn.define(def);
      expect(dom.name).toBe(name);
      expect(dom.uuid).toMatch(/^[0-9a-f-]{36}$/);
      const st = await dom.getState();
      expect(st.state).toBe('shut off');
      expect(await dom.isActive()).toBe(false);
      expect(await dom.isPersistent()).toBe(true);
      // libvirt's own answer (through python3-libvirt on the node): not updated since defined
      expect(await dom.isUpdated()).toBe(false);
      expect(await dom.getOsType()).toBe('hvm');
      const listed = (await conn.listDomains()).find((d) => d.name === name);
      expect(listed).toMatchObject({ uuid: dom.uuid, id: undefined, state: 'shut off' });
      expect((await conn.lookupByUuid(dom.uuid.toUpperCase())).name).toBe(name);
      // nothing left in a temp dir on the node
      const leftovers = (await node.list('/tmp')).filter((e) =>
        e.name.startsWith('v2v-load-virsh-'),
      );
      expect(leftovers).toEqual([]);
    });

    it('reports capabilities with the qemu domain type and machines', async () => {
      const caps = await conn.capabilities();
      const x86 = caps.guests.find((g) => g.arch === 'x86_64' && g.osType === 'hvm');
      expect(x86?.domainTypes).toContain('qemu');
      expect(x86?.machines).toContain('pc');
      expect(await conn.domainTypes()).toContain('qemu');
    });

    it('returns the XML raw and parsed; metadata get/set under our namespace', async () => {
      const xml = await dom.getXml({ inactive: true });
      expect(xml).toContain(`<name>${name}</name>`);
      const desc = await dom.getDescription();
      expect(desc).toMatchObject({
        type: 'qemu',
        name,
        uuid: dom.uuid,
        memoryKiB: 262144,
        vcpus: 1,
      });
      expect(desc.os.kernel).toBe(files.kernel);
      expect(desc.disks).toEqual([
        {
          device: 'disk',
          target: 'vda',
          bus: 'virtio',
          source: path.join(dir, 'disk.qcow2'),
          format: 'qcow2',
        },
      ]);
      expect(await dom.getMetadata()).toBeUndefined();
      await dom.setMetadata({ image: 'centos <7> & "base"', revision: '3' });
      expect(await dom.getMetadata()).toEqual({ image: 'centos <7> & "base"', revision: '3' });
      expect(await dom.getXml({ inactive: true })).toContain(
        'https://v2v-load.dev/xmlns/provisioning/1',
      );
      await dom.removeMetadata();
      expect(await dom.getMetadata()).toBeUndefined();
      await dom.setMetadata({ image: 'vmwarelinux-base', revision: '7' });
    });

    it('sets autostart, memory, vCPUs and attaches/detaches a device in the config', async () => {
      await dom.setAutostart(true);
      expect(await dom.getAutostart()).toBe(true);
      await dom.setAutostart(false);
      expect(await dom.getAutostart()).toBe(false);
      await dom.setVcpus(2, { maximum: true, impact: 'config' });
      await dom.setVcpus(2, { impact: 'config' });
      expect(await dom.getVcpus()).toEqual({ maximum: { config: 2 }, current: { config: 2 } });
      await dom.setVcpus(1, { impact: 'config' });
      await dom.setVcpus(1, { maximum: true, impact: 'config' });
      expect(await dom.getVcpus()).toEqual({ maximum: { config: 1 }, current: { config: 1 } });
      expect(await dom.schedulerParameters({ cpu_shares: 512 }, 'config')).toMatchObject({
        Scheduler: 'posix',
        cpu_shares: 512,
      });
      expect(await dom.memoryParameters({ soft_limit: 1048576 }, 'config')).toMatchObject({
        soft_limit: 1048576,
        hard_limit: 'unlimited',
      });
      expect(await dom.blkioParameters({ weight: 300 }, 'config')).toMatchObject({ weight: 300 });
      await dom.setMaxMemory(300 * 1024, 'config');
      await dom.setMemory(200 * 1024, 'config');
      let info = await dom.getInfo();
      expect(info).toMatchObject({ maxMemoryKiB: 300 * 1024, memoryKiB: 200 * 1024 });
      await dom.setMemory(256 * 1024, 'config');
      await dom.setMaxMemory(256 * 1024, 'config');
      info = await dom.getInfo();
      expect(info).toMatchObject({
        maxMemoryKiB: 262144,
        memoryKiB: 262144,
        state: 'shut off',
        id: undefined,
      });
      const cdrom = buildDomainXml({
        type: 'qemu',
        name: 'x',
        memoryKiB: 1,
        vcpus: 1,
        os: { type: 'hvm' },
      });
      expect(cdrom).toContain('<domain');
      const disk = `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sdb' bus='sata'/><readonly/></disk>`;
      await dom.attachDevice(disk, 'config');
      expect((await dom.getDescription({ inactive: true })).disks.map((d) => d.target)).toEqual([
        'vda',
        'sdb',
      ]);
      const media = disk.replace(
        '<target',
        `<source file='${path.join(dir, 'media.iso')}'/><target`,
      );
      await fs.writeFile(path.join(dir, 'media.iso'), Buffer.alloc(2048));
      await dom.updateDevice(media, 'config');
      expect((await dom.getDescription({ inactive: true })).disks[1]).toMatchObject({
        device: 'cdrom',
        target: 'sdb',
        source: path.join(dir, 'media.iso'),
      });
      await dom.detachDevice(disk, 'config');
      expect((await dom.getDescription({ inactive: true })).disks.map((d) => d.target)).toEqual([
        'vda',
      ]);
    });

    it('takes an internal snapshot of the shut-off domain', async () => {
      const s = await dom.snapshots.create('s1 off', { description: 'before the first boot' });
      expect(s).toMatchObject({
        name: 's1 off',
        description: 'before the first boot',
        state: 'shutoff',
        current: true,
        parent: undefined,
      });
      expect(Math.abs(s.creationTime.getTime() - Date.now())).toBeLessThan(10 * 60_000);
    });

    it('starts the guest, which really boots: running (booted), info, stats', async () => {
      await dom.start();
      expect(await waitForConsole(node, consoleLog, TINY_BOOT_MARKER, BOOT_TIMEOUT_MS)).toBe(true);
      expect(await waitForConsole(node, consoleLog, TINY_READY_MARKER, BOOT_TIMEOUT_MS)).toBe(true);
      expect(await dom.getState()).toEqual({ state: 'running', reason: 'booted' });
      expect(await dom.isActive()).toBe(true);
      const handle = await dom.refresh();
      expect(handle.id).toBeGreaterThan(0);
      expect((await conn.lookupById(handle.id ?? -1)).uuid).toBe(dom.uuid);
      const info = await dom.getInfo();
      expect(info.state).toBe('running');
      expect(info.cpuTimeSeconds).toBeGreaterThan(0);
      expect(info.vcpus).toBe(1);
      const stats = await dom.stats();
      expect(stats.get('state.state')).toBe('1');
      expect(stats.get('block.0.name')).toBe('vda');
      expect(await dom.blockInfo('vda')).toMatchObject({ capacity: 16 * 1024 * 1024 });
      await dom.blockResize('vda', 32 * 1024 * 1024);
      expect(await dom.blockInfo('vda')).toMatchObject({ capacity: 32 * 1024 * 1024 });
      expect(await dom.interfaceStats(mac)).toMatchObject({
        rx_bytes: expect.any(Number),
        tx_packets: expect.any(Number),
      });
      const noNic = await dom.interfaceStats('52:54:00:ff:ff:ff').catch((x: unknown) => x);
      expect(noNic).toBeInstanceOf(LibvirtError);
      expect(await dom.schedulerParameters()).toMatchObject({
        Scheduler: 'posix',
        cpu_shares: 512,
      });
      expect(await dom.blockStats('vda')).toHaveProperty('rd_req');
      expect(await dom.memoryStats()).toHaveProperty('actual', 262144);
      expect(await dom.getVcpus()).toMatchObject({ current: { live: 1, config: 1 } });
      expect(await dom.getMetadata()).toEqual({ image: 'vmwarelinux-base', revision: '7' });
    });

    it('says clearly that there is no guest agent for the hostname', async () => {
      const e = await dom.getHostname().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LibvirtError);
      expect(isNoAgent(e)).toBe(true);
      expect((e as LibvirtError).message).toMatch(/guest agent/);
      expect((e as LibvirtError).message).toContain(name);
    });

    it('suspends and resumes: paused (user), running (unpaused)', async () => {
      await dom.suspend();
      expect(await dom.getState()).toEqual({ state: 'paused', reason: 'user' });
      await dom.resume();
      expect(await dom.getState()).toEqual({ state: 'running', reason: 'unpaused' });
      const e = await dom.start().catch((x: unknown) => x);
      expect(isOperationInvalid(e)).toBe(true);
    });

    it('takes a snapshot of the running domain and lists both with parent and current', async () => {
      await dom.snapshots.create('s2;"run"', { description: 'running' });
      const list = await dom.snapshots.list();
      expect(list.map((s) => [s.name, s.state, s.parent, s.current])).toEqual([
        ['s1 off', 'shutoff', undefined, false],
        ['s2;"run"', 'running', 's1 off', true],
      ]);
    });

    it('reboots: the guest gets the ACPI button, powers off and boots again', async () => {
      const before = await bootCount();
      await dom.reboot();
      expect(
        await waitForConsole(node, consoleLog, TINY_READY_MARKER, BOOT_TIMEOUT_MS, before + 1),
      ).toBe(true);
      expect(await waitForConsole(node, consoleLog, TINY_POWEROFF_MARKER, 1000)).toBe(true);
      expect((await dom.getState()).state).toBe('running');
    });

    it('resets: the guest boots again without being asked', async () => {
      const before = await bootCount();
      await dom.reset();
      expect(
        await waitForConsole(node, consoleLog, TINY_READY_MARKER, BOOT_TIMEOUT_MS, before + 1),
      ).toBe(true);
      expect((await dom.getState()).state).toBe('running');
    });

    it('dumps core, saves to a file and restores: running (restored)', async () => {
      const core = path.join(dir, 'core.elf');
      await dom.coreDump(core, { memoryOnly: true });
      expect((await node.stat(core))?.size).toBeGreaterThan(1024 * 1024);
      await node.remove(core);
      const saved = path.join(dir, 'saved.img');
      await dom.save(saved);
      expect(await dom.getState()).toEqual({ state: 'shut off', reason: 'saved' });
      await conn.restore(saved);
      expect(await dom.getState()).toEqual({ state: 'running', reason: 'restored' });
      await node.remove(saved);
    });

    it('managed save: shut off (saved), has / remove', async () => {
      await dom.managedSave();
      expect(await dom.getState()).toEqual({ state: 'shut off', reason: 'saved' });
      expect(await dom.hasManagedSave()).toBe(true);
      await dom.managedSaveRemove();
      expect(await dom.hasManagedSave()).toBe(false);
    });

    it('shuts down: the guest powers off on the ACPI button: shut off (shutdown)', async () => {
      const before = await bootCount();
      await dom.start();
      expect(
        await waitForConsole(node, consoleLog, TINY_READY_MARKER, BOOT_TIMEOUT_MS, before + 1),
      ).toBe(true);
      await dom.shutdown();
      expect(await waitForState(dom, 'shut off', BOOT_TIMEOUT_MS)).toBe('shut off (shutdown)');
      expect(await dom.getState()).toEqual({ state: 'shut off', reason: 'shutdown' });
      const e = await dom.shutdown().catch((x: unknown) => x);
      expect(isOperationInvalid(e)).toBe(true);
    });

    it('send-key KEY_POWER: the guest sees the power key and powers off', async () => {
      const before = await bootCount();
      await dom.start();
      expect(
        await waitForConsole(node, consoleLog, TINY_READY_MARKER, BOOT_TIMEOUT_MS, before + 1),
      ).toBe(true);
      await dom.sendKey(['KEY_POWER']);
      expect(await waitForState(dom, 'shut off', BOOT_TIMEOUT_MS)).toBe('shut off (shutdown)');
      const bad = await dom.sendKey(['KEY_A; reboot']).catch((x: unknown) => x);
      expect((bad as Error).message).toMatch(/not a key name/);
    });

    it('destroys: shut off (destroyed), also with --graceful', async () => {
      await dom.start({ paused: true });
      expect(await dom.getState()).toEqual({ state: 'paused', reason: 'user' });
      await dom.destroy({ graceful: true });
      expect(await dom.getState()).toEqual({ state: 'shut off', reason: 'destroyed' });
    });

    it('reverts to a snapshot and deletes snapshots with children', async () => {
      await dom.snapshots.revert('s1 off');
      expect((await dom.getState()).state).toBe('shut off');
      expect(await dom.snapshots.currentName()).toBe('s1 off');
      await dom.snapshots.delete('s1 off', { children: true });
      expect(await dom.snapshots.list()).toEqual([]);
      const e = await dom.snapshots.info('s1 off').catch((x: unknown) => x);
      expect(isNotFound(e)).toBe(true);
    });

    it('undefines: the domain is gone, lookups say not found', async () => {
      await dom.snapshots.create('s3');
      const refused = await dom.undefine().catch((x: unknown) => x);
      expect(refused).toBeInstanceOf(LibvirtError);
      await dom.undefine({ snapshotsMetadata: true, managedSave: true });
      const e = await conn.lookupByName(name).catch((x: unknown) => x);
      expect(isNotFound(e)).toBe(true);
      const e2 = await dom.getState().catch((x: unknown) => x);
      expect(isNotFound(e2)).toBe(true);
      expect((e2 as Error).message).toContain(name);
    });

    it('creates a transient domain that is gone after destroy', async () => {
      const tname = `${prefix}transient`;
      const t = await conn.create(tinyGuestDefinition(tname, files, path.join(dir, 't.log')));
      expect(await t.isPersistent()).toBe(false);
      expect(await t.isActive()).toBe(true);
      await t.destroy();
      expect(isNotFound(await conn.lookupByName(tname).catch((x: unknown) => x))).toBe(true);
    });

    it('takes a disk-only external snapshot (an overlay file) and deletes it', async () => {
      const disk = path.join(dir, 'ext.qcow2');
      await exec('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
      await fs.chmod(disk, 0o666);
      const def = tinyGuestDefinition(`${prefix}ext`, files, path.join(dir, 'ext.log'));
      def.disks = [{ device: 'disk', source: disk, format: 'qcow2', target: 'vda', bus: 'virtio' }];
      const ext = await conn.define(def);
      const snap = await ext.snapshots.create('ext1', { diskOnly: true, atomic: true });
      expect(snap).toMatchObject({ name: 'ext1', memory: 'no', current: true });
      expect(snap.disks).toEqual([
        { name: 'vda', snapshot: 'external', file: path.join(dir, 'ext.ext1') },
      ]);
      expect(await node.stat(path.join(dir, 'ext.ext1'))).toMatchObject({ type: 'file' });
      expect((await ext.getDescription({ inactive: true })).disks[0]?.source).toBe(
        path.join(dir, 'ext.ext1'),
      );
      await ext.snapshots.delete('ext1', { metadataOnly: true });
      expect(await ext.snapshots.names()).toEqual([]);
      await ext.undefine();
    });

    it('hostile names (quotes, spaces, ;) work', async () => {
      const hostile = `${prefix}a b'c"d;e $(x) \`y\``;
      const h = await conn.define(tinyGuestDefinition(hostile, files, path.join(dir, 'h.log')));
      expect(h.name).toBe(hostile);
      expect((await conn.lookupByName(hostile)).uuid).toBe(h.uuid);
      expect(
        (await conn.listDomains()).some((d) => d.name === hostile && d.state === 'shut off'),
      ).toBe(true);
      await h.setMetadata({ image: 'x' });
      await h.undefine();
      expect(isNotFound(await conn.lookupByName(hostile).catch((x: unknown) => x))).toBe(true);
    });

    it('bad input: malformed XML, duplicate name, unknown domain: clear errors, nothing defined', async () => {
      const bad = await conn
        .define(`<domain type='qemu'><name>${prefix}bad</name`)
        .catch((x: unknown) => x);
      expect(bad).toBeInstanceOf(LibvirtError);
      expect((bad as LibvirtError).kind).toBe('invalid-xml');
      expect((bad as LibvirtError).message).toMatch(/define domain.*failed: .*expected '>'/s);
      const dupName = `${prefix}dup`;
      const first = await conn.define(tinyGuestDefinition(dupName, files, path.join(dir, 'd.log')));
      const dup = await conn
        .define({
          ...tinyGuestDefinition(dupName, files, path.join(dir, 'd.log')),
          uuid: '11111111-2222-3333-4444-555555555555',
        })
        .catch((x: unknown) => x);
      expect(isAlreadyExists(dup)).toBe(true);
      expect((dup as Error).message).toContain(dupName);
      await first.undefine();
      const unknown = await conn.lookupByName(`${prefix}nosuch`).catch((x: unknown) => x);
      expect(isNotFound(unknown)).toBe(true);
      expect((unknown as Error).message).toContain(`${prefix}nosuch`);
      const left = (await conn.listDomains()).filter((d) => d.name.startsWith(prefix));
      expect(left).toEqual([]);
      const leftovers = (await node.list('/tmp')).filter((e) =>
        e.name.startsWith('v2v-load-virsh-'),
      );
      expect(leftovers).toEqual([]);
    });
  });
}
