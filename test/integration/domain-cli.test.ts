/**
 * `v2v-load domain <verb>` against the real libvirtd, on the local node and through the SSH
 * node, with the tiny guest (it really boots, reboots and powers off on shutdown).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LocalNode } from '../../src/node/local-node.js';
import { buildDomainXml } from '../../src/provisioning/libvirt/domain-xml-types.js';
import { cli } from '../harness/cli.js';
import {
  buildTinyGuest,
  TINY_READY_MARKER,
  tinyGuestDefinition,
  waitForConsole,
} from '../harness/tiny-guest.js';

const sshd = inject('sshd');
const local = new LocalNode();
const BOOT_TIMEOUT_MS = 90_000;

const NODES: [string, string[]][] = [
  ['local', []],
  ['ssh', ['--host', sshd.url, '--identity', sshd.identity, '--known-hosts', sshd.knownHosts]],
];

describe.each(NODES)('v2v-load domain on the %s node', (kind, nodeArgs) => {
  const name = `v2vl3-cli-${kind} 'x';y`;
  let dir: string;
  let consoleLog: string;
  const domain = (...args: string[]) => cli('domain', ...args, ...nodeArgs);
  const json = async (...args: string[]): Promise<Record<string, unknown>> => {
    const r = await domain(...args, '--json');
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const ready = async (count: number) =>
    waitForConsole(local, consoleLog, TINY_READY_MARKER, BOOT_TIMEOUT_MS, count);

  beforeAll(async () => {
    const files = await buildTinyGuest();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), `v2vl3-cli-${kind}-`));
    await fs.chmod(dir, 0o755);
    consoleLog = path.join(dir, 'console.log');
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
    await local.run(['qemu-img', 'create', '-q', '-f', 'qcow2', def.disks[0]?.source ?? '', '16M']);
    await fs.chmod(path.join(dir, 'disk.qcow2'), 0o666);
    await fs.writeFile(path.join(dir, 'domain.xml'), buildDomainXml(def));
    await fs.writeFile(path.join(dir, 'bad.xml'), '<domain type="qemu"><name>v2vl3-cli-bad</name');
  });

  afterAll(async () => {
    await domain('destroy', name);
    await domain('undefine', name, '--snapshots-metadata', '--managed-save');
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('define FILE, list, state --json, info, xml', async () => {
    const def = await json('define', path.join(dir, 'domain.xml'));
    expect(def).toMatchObject({ name });
    const list = (await json('list')) as unknown as { name: string; state: string }[];
    expect(list.find((d) => d.name === name)).toMatchObject({ state: 'shut off' });
    expect(await json('state', name)).toEqual({
      name,
      uuid: def.uuid,
      state: 'shut off',
      reason: 'unknown',
    });
    expect(await json('info', name)).toMatchObject({
      name,
      maxMemoryKiB: 262144,
      persistent: true,
    });
    const xml = await domain('xml', name, '--inactive');
    expect(xml.stdout).toContain('<domain');
    expect(xml.stdout).toContain('v2vl3-cli-');
    const text = await domain('state', name);
    expect(text.stdout).toBe('shut off (unknown)\n');
  });

  it('snapshot-create, snapshot-list', async () => {
    expect(await json('snapshot-create', name, 'first', '--description', 'd1')).toMatchObject({
      name: 'first',
      description: 'd1',
      state: 'shutoff',
      current: true,
    });
    const list = (await json('snapshot-list', name)) as { snapshots: { name: string }[] };
    expect(list.snapshots.map((s) => s.name)).toEqual(['first']);
  });

  it('start (boots), suspend, resume, stats, reboot (boots again), reset', async () => {
    expect((await domain('start', name)).status).toBe(0);
    expect(await ready(1)).toBe(true);
    expect(await json('state', name)).toMatchObject({ state: 'running', reason: 'booted' });
    await json('suspend', name);
    expect(await json('state', name)).toMatchObject({ state: 'paused', reason: 'user' });
    await json('resume', name);
    expect(await json('state', name)).toMatchObject({ state: 'running', reason: 'unpaused' });
    const stats = (await json('stats', name)) as { stats: Record<string, string> };
    expect(stats.stats['state.state']).toBe('1');
    expect(stats.stats['block.0.name']).toBe('vda');
    await json('reboot', name);
    expect(await ready(2)).toBe(true);
    await json('reset', name);
    expect(await ready(3)).toBe(true);
    expect(await json('state', name)).toMatchObject({ state: 'running' });
  });

  it('shutdown: the guest powers off; then start --paused and destroy', async () => {
    await json('shutdown', name);
    let state: Record<string, unknown> = {};
    for (let i = 0; i < 360; i++) {
      state = await json('state', name);
      if (state.state === 'shut off') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(state).toMatchObject({ state: 'shut off', reason: 'shutdown' });
    await json('start', name, '--paused');
    await json('destroy', name, '--graceful');
    expect(await json('state', name)).toMatchObject({ state: 'shut off', reason: 'destroyed' });
  });

  it('snapshot-revert, snapshot-delete --children, undefine', async () => {
    await json('snapshot-create', name, 'second');
    await json('snapshot-revert', name, 'first');
    await json('snapshot-delete', name, 'first', '--children');
    expect(((await json('snapshot-list', name)) as { snapshots: unknown[] }).snapshots).toEqual([]);
    await json('undefine', name);
    const r = await domain('state', name, '--json');
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 'LIBVIRT_NOT_FOUND', kind: 'not-found' });
    expect(r.stderr).toContain(name);
  });

  it('clear errors: bad XML, unknown domain, bad verb, missing file', async () => {
    const bad = await domain('define', path.join(dir, 'bad.xml'), '--json');
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ code: 'LIBVIRT_INVALID_XML' });
    const unknown = await domain('start', 'v2vl3-cli-nosuch');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/v2vl3-cli-nosuch/);
    expect(unknown.stderr).toMatch(/hint: list the domains/);
    const verb = await domain('frobnicate', 'x');
    expect(verb.status).toBe(2);
    const missing = await domain('define', path.join(dir, 'nope.xml'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nope\.xml: cannot read the file/);
    const list = (await json('list')) as unknown as { name: string }[];
    expect(list.filter((d) => d.name.startsWith('v2vl3-cli-'))).toEqual([]);
  });
});
