/**
 * Parsers of virsh output and the error classification, against real output captured on this
 * machine (test/golden/virsh/).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandError } from '../../src/errors.js';
import { parseCapabilities } from '../../src/provisioning/libvirt/capabilities.js';
import { parseIdNameList, parseUuidNameList } from '../../src/provisioning/libvirt/connection.js';
import {
  classifyLibvirtError,
  isNotFound,
  LibvirtError,
  libvirtDetail,
  toLibvirtError,
} from '../../src/provisioning/libvirt/errors.js';
import {
  parseBlockInfo,
  parseDomInfo,
  parseDomStatsRaw,
  parseNameValueLines,
  parseVcpuCount,
  statsUnder,
} from '../../src/provisioning/libvirt/parse.js';
import { parseSnapshotXml } from '../../src/provisioning/libvirt/snapshot.js';
import {
  DOMAIN_STATES,
  parseDomState,
  STATE_REASONS,
  stateFromCodes,
} from '../../src/provisioning/libvirt/state.js';

const GOLDEN = path.resolve(import.meta.dirname, '../golden/virsh');
const read = (name: string): string => fs.readFileSync(path.join(GOLDEN, name), 'utf8');

describe('domstate --reason', () => {
  it.each([
    ['domstate-running-booted.txt', 'running', 'booted'],
    ['domstate-paused-user.txt', 'paused', 'user'],
    ['domstate-shutoff-destroyed.txt', 'shut off', 'destroyed'],
    ['domstate-shutoff-shutdown.txt', 'shut off', 'shutdown'],
  ])('%s → %s (%s)', (file, state, reason) => {
    expect(parseDomState(read(file))).toEqual({ state, reason });
  });

  it('parses every state and reason libvirt defines, in its words', () => {
    for (const state of DOMAIN_STATES) {
      for (const reason of STATE_REASONS[state]) {
        expect(parseDomState(`${state} (${reason})\n`)).toEqual({ state, reason });
      }
    }
    expect(parseDomState('in shutdown (user)')).toEqual({ state: 'in shutdown', reason: 'user' });
    expect(parseDomState('paused (I/O error)')).toEqual({ state: 'paused', reason: 'I/O error' });
    expect(parseDomState('crashed (panicked)')).toEqual({ state: 'crashed', reason: 'panicked' });
    expect(parseDomState('pmsuspended')).toEqual({ state: 'pmsuspended', reason: 'unknown' });
  });

  it('refuses unknown states and reasons, naming the text', () => {
    expect(() => parseDomState('exploded (badly)')).toThrow(
      /unknown domain state.*"exploded \(badly\)"/,
    );
    expect(() => parseDomState('running (sideways)')).toThrow(
      /unknown reason "sideways" of state "running"/,
    );
  });

  it('maps libvirt numeric codes (domstats state.state / state.reason)', () => {
    expect(stateFromCodes(1, 1)).toEqual({ state: 'running', reason: 'booted' });
    expect(stateFromCodes(5, 2)).toEqual({ state: 'shut off', reason: 'destroyed' });
    expect(stateFromCodes(3, 1)).toEqual({ state: 'paused', reason: 'user' });
    expect(stateFromCodes(5, 5)).toEqual({ state: 'shut off', reason: 'saved' });
    expect(stateFromCodes(2, 0)).toEqual({ state: 'idle', reason: 'unknown' });
    expect(() => stateFromCodes(42, 0)).toThrow(/42/);
  });
});

describe('dominfo', () => {
  it('running', () => {
    expect(parseDomInfo(read('dominfo-running.txt'))).toEqual({
      id: 2,
      name: 'v2vl3-probe',
      uuid: '9e9c7e74-a4a5-401a-9f85-d1e25a48c033',
      osType: 'hvm',
      state: 'running',
      vcpus: 1,
      cpuTimeSeconds: 9.4,
      maxMemoryKiB: 262144,
      memoryKiB: 262144,
      persistent: true,
      autostart: false,
      managedSave: false,
    });
  });
  it('shut off: no id, no CPU time', () => {
    expect(parseDomInfo(read('dominfo-shutoff.txt'))).toMatchObject({
      id: undefined,
      state: 'shut off',
      cpuTimeSeconds: undefined,
    });
  });
  it('refuses output without the lines it needs', () => {
    expect(() => parseDomInfo('Id: 1\n', 'dominfo of x')).toThrow(/dominfo of x: no "State" line/);
  });
});

describe('domstats --raw', () => {
  it('running guest with a disk', () => {
    const all = parseDomStatsRaw(read('domstats-raw-running-disk.txt'));
    const s = all.get('v2vl3-probe');
    expect(s?.get('state.state')).toBe('1');
    expect(s?.get('block.0.path')).toBe('/var/tmp/v2vl3-probe/disk.qcow2');
    expect(statsUnder(s ?? new Map(), 'block.0')).toMatchObject({
      name: 'vda',
      capacity: 16777216,
      'rd.reqs': 1,
    });
  });
  it('shut off guest', () => {
    const s = parseDomStatsRaw(read('domstats-raw-shutoff.txt')).get('v2vl3-probe');
    expect(stateFromCodes(Number(s?.get('state.state')), Number(s?.get('state.reason')))).toEqual({
      state: 'shut off',
      reason: 'destroyed',
    });
    expect(s?.get('balloon.maximum')).toBe('262144');
  });
  it('keeps names with quotes', () => {
    const m = parseDomStatsRaw("Domain: 'a'b;\"c'\n  state.state=5\n  state.reason=0\n");
    expect([...m.keys()]).toEqual(['a\'b;"c']);
  });
});

describe('other virsh output', () => {
  it('domblkinfo', () => {
    expect(parseBlockInfo(read('domblkinfo.txt'))).toEqual({
      capacity: 16777216,
      allocation: 212992,
      physical: 327750,
    });
  });
  it('vcpucount', () => {
    expect(parseVcpuCount(read('vcpucount-shutoff.txt'))).toEqual({
      maximum: { config: 1 },
      current: { config: 1 },
    });
  });
  it('schedinfo / memtune style and dommemstat style lines', () => {
    expect(parseNameValueLines('Scheduler      : posix\ncpu_shares     : 512\n')).toEqual({
      Scheduler: 'posix',
      cpu_shares: 512,
    });
    expect(parseNameValueLines('hard_limit     : unlimited\n')).toEqual({
      hard_limit: 'unlimited',
    });
    expect(parseNameValueLines('actual 262144\nrss 218068\n')).toEqual({
      actual: 262144,
      rss: 218068,
    });
    expect(
      parseNameValueLines('52:54:00:3a:00:01 rx_bytes 0\nab:cd:00:3a:00:01 tx_drop 3\n'),
    ).toEqual({ rx_bytes: 0, tx_drop: 3 });
    expect(parseNameValueLines('vda rd_req 1\nvda rd_bytes 512\n')).toEqual({
      rd_req: 1,
      rd_bytes: 512,
    });
  });
  it('list --uuid --name and --id --name, names with spaces and quotes', () => {
    expect(parseUuidNameList(read('list-uuid-name.txt'))).toEqual([
      { uuid: 'b52204f6-ead5-4ac0-9b44-c178cb33c782', name: 'v2vl3 a\'b;"c' },
    ]);
    expect(parseIdNameList('- a b\n 3 web\n7 x y\n')).toEqual(
      new Map([
        ['a b', undefined],
        ['x y', 7],
      ]),
    );
  });
  it('capabilities: domain types and machines of x86_64 hvm', () => {
    const caps = parseCapabilities(read('capabilities.xml'));
    const x86 = caps.guests.find((g) => g.arch === 'x86_64');
    expect(x86?.osType).toBe('hvm');
    expect(x86?.domainTypes).toEqual(['qemu', 'kvm']);
    expect(x86?.machines).toContain('pc');
    expect(x86?.machines).toContain('pc-i440fx-7.2');
    expect(x86?.machines).toContain('q35');
    expect(x86?.emulator).toBe('/usr/bin/qemu-system-x86_64');
    expect(caps.hostArch).toBe('x86_64');
  });
  it('snapshot-dumpxml of a running and a shut-off snapshot', () => {
    expect(parseSnapshotXml(read('snapshot-dumpxml-running.xml'), 'snap', true)).toEqual({
      name: 'snap 2',
      description: 'running one',
      creationTime: new Date(1795426377 * 1000),
      state: 'running',
      current: true,
      parent: 'snap1',
      memory: 'internal',
      disks: [{ name: 'vda', snapshot: 'internal', file: undefined }],
    });
    expect(parseSnapshotXml(read('snapshot-dumpxml-shutoff.xml'), 'snap', false)).toMatchObject({
      name: 'snap1',
      state: 'shutoff',
      parent: undefined,
      memory: 'no',
      current: false,
    });
  });
});

describe('libvirt errors', () => {
  it.each([
    ['error-domain-not-found.txt', 'not-found'],
    ['error-snapshot-not-found.txt', 'not-found'],
    ['error-metadata-missing.txt', 'not-found'],
    ['error-define-duplicate-running.txt', 'already-exists'],
    ['error-define-empty.txt', 'invalid-xml'],
    ['error-define-malformed.txt', 'invalid-xml'],
    ['error-resume-shutoff.txt', 'operation-invalid'],
    ['error-shutdown-shutoff.txt', 'operation-invalid'],
    ['error-hostname-shutoff.txt', 'operation-invalid'],
    ['error-start-running.txt', 'operation-invalid'],
    ['error-hostname-noagent.txt', 'no-agent'],
  ])('%s → %s', (file, kind) => {
    expect(classifyLibvirtError(read(file))).toBe(kind);
  });

  it('classifies the texts named in the brief', () => {
    expect(classifyLibvirtError('error: Domain not found: no domain with matching name')).toBe(
      'not-found',
    );
    expect(
      classifyLibvirtError('error: this function is not supported by the connection driver'),
    ).toBe('unsupported');
    expect(classifyLibvirtError('error: XML error: bad')).toBe('invalid-xml');
    expect(
      classifyLibvirtError('error: Requested operation is not valid: domain is already running'),
    ).toBe('operation-invalid');
    expect(classifyLibvirtError('error: QEMU guest agent is not connected')).toBe('no-agent');
    expect(classifyLibvirtError('error: internal error: something')).toBe('other');
  });

  it('keeps only libvirt error lines in the detail', () => {
    expect(libvirtDetail(read('error-define-malformed.txt'))).toBe(
      "Failed to define domain from /tmp/bad.xml: (domain_definition):2: expected '>'",
    );
  });

  it('wraps a CommandError, and isNotFound follows the cause chain', () => {
    const cmd = new CommandError({
      argv: ['virsh', 'domstate', 'x'],
      node: 'local',
      exitCode: 1,
      signal: undefined,
      stdout: '',
      stderr: read('error-domain-not-found.txt'),
      durationMs: 1,
      timedOut: false,
      aborted: false,
    });
    const e = toLibvirtError(cmd, 'read the state of domain "x"', 'qemu:///system on local');
    expect(e).toBeInstanceOf(LibvirtError);
    expect((e as LibvirtError).code).toBe('LIBVIRT_NOT_FOUND');
    expect((e as LibvirtError).message).toBe(
      `read the state of domain "x" (qemu:///system on local) failed: failed to get domain 'nosuch-v2vl3'`,
    );
    expect(isNotFound(e)).toBe(true);
    expect(isNotFound(new Error('outer', { cause: e }))).toBe(true);
    expect(isNotFound(cmd)).toBe(false);
    const timedOut = new CommandError({ ...cmd, timedOut: true, exitCode: undefined });
    expect(toLibvirtError(timedOut, 'x', 'y')).toBe(timedOut);
  });
});
