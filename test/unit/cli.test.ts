import { describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';

describe('v2v-load CLI', () => {
  it('--help lists the commands and the exit statuses', async () => {
    const r = await cli('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/v2v-load doctor/);
    expect(r.stdout).toMatch(/2 usage error, 3 node unreachable/);
  });

  it('doctor --help documents the node options and its own', async () => {
    const r = await cli('doctor', '--help');
    expect(r.status).toBe(0);
    for (const opt of [
      '--host',
      '--identity',
      '--known-hosts',
      '--accept-new-host-key',
      '--connect',
      '--json',
      '--dir',
      '--accel',
    ]) {
      expect(r.stdout).toContain(opt);
    }
  });

  it('--version prints the package version', async () => {
    const r = await cli('--version');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([
    [['frobnicate'], /Unknown argument: frobnicate/],
    [[], /give a command/],
    [['doctor', '--host', 'http://vmhost1'], /--host 'http:\/\/vmhost1': only ssh:\/\/ URLs/],
    [['doctor', '--min-free', 'lots'], /--min-free 'lots': not a size/],
    [['doctor', '--accel', 'warp'], /Invalid values:[\s\S]*accel/],
    [
      ['doctor', '--host', 'ssh://root@127.0.0.1:1', '--identity', '/nonexistent/key'],
      /--identity '\/nonexistent\/key': cannot read the key: ENOENT/,
    ],
  ])('usage error %j exits 2 with a message naming the input', async (args, message) => {
    const r = await cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('inspect --help lists every reader option with the readers that take it', async () => {
    const r = await cli('inspect', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Reader options:/);
    expect(r.stdout).toMatch(/--memory\s+-i disk: memory/);
    expect(r.stdout).toMatch(/--connect\s+-i libvirt: libvirt URI/);
    expect(r.stdout).toMatch(/-i, --input/);
  });

  it.each([
    [['inspect', 'guest.vmx', '--memory', '2G'], /--memory applies to -i disk, not to -i vmx/],
    [
      ['inspect', 'a.ova', '--connect', 'qemu:///system'],
      /--connect applies to -i libvirt, not to -i ova/,
    ],
    [['inspect', 'a.qcow2', '--memory', 'lots'], /--memory 'lots': not a size/],
    [
      ['inspect', '-i', 'libvirt', 'web01', '--connect', 'not a uri'],
      /--connect 'not a uri' is not a libvirt URI/,
    ],
  ])('inspect checks reader options before reading anything: %j', async (args, message) => {
    const r = await cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it.each([
    ['two', "--vcpus 'two': expected a whole number of at least 1"],
    ['0', "--vcpus '0': expected a whole number of at least 1"],
    ['1.5', "--vcpus '1.5': expected a whole number of at least 1"],
  ])('inspect --vcpus %s is a usage error quoting what was typed', async (typed, message) => {
    const r = await cli('inspect', 'a.qcow2', '--vcpus', typed);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`v2v-load: error: ${message}\nv2v-load: hint: e.g. --vcpus 2\n`);
  });

  it('with --json an error is also a JSON object on stdout', async () => {
    const r = await cli('doctor', '--json', '--host', 'ftp://x');
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: 'UsageError', code: 'USAGE' });
  });
});
