/**
 * `v2v-load doctor` through the real binary (bin/v2v-load.js, built by the global set-up),
 * on the local machine and against the test sshd.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DoctorReport } from '../../src/doctor/doctor.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/v2v-load.js');
const sshd = inject('sshd');

async function v2vLoad(
  ...args: string[]
): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 600_000 });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { status: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const CHECKS = ['node', 'qemu-img', 'virsh', 'libvirtd', 'kvm', 'libguestfs', 'free-space'];

describe('v2v-load doctor', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-doctor-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('--json checks this machine, probing KVM then TCG for libguestfs', async () => {
    // accel auto: KVM is tried first where /dev/kvm exists (it fails or hangs on these machines)
    const r = await v2vLoad('doctor', '--json', '--dir', dir);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.node).toBe('local');
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(CHECKS);
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    expect(byName['qemu-img']?.detail).toMatch(/^qemu-img \d+\.\d+/);
    expect(byName.libvirtd?.detail).toMatch(/qemu:\/\/\/system answers: QEMU \d/);
    const guestfs = byName.libguestfs?.detail ?? '';
    expect(guestfs).toMatch(/^appliance \d+\.\d+\.\d+ launched (with KVM|under TCG)/);
    // the domain type follows from what the appliance launch found
    expect(report.domainType).toBe(guestfs.includes('under TCG') ? 'qemu' : 'kvm');
    if (guestfs.includes('under TCG')) expect(guestfs).toMatch(/only TCG works/);
    expect(byName['free-space']?.detail).toContain(`free of`);
  });

  it('prints the text report without --json', async () => {
    const r = await v2vLoad('doctor', '--no-libguestfs', '--dir', dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^v2v-load doctor: local\n/);
    expect(r.stdout).toMatch(/ {2}ok {4}libvirtd {4}qemu:\/\/\/system answers/);
    expect(r.stdout).toMatch(/ {2}skip {2}libguestfs {2}skipped \(--no-libguestfs\)/);
    expect(r.stdout).toMatch(/all required checks passed\n$/);
  });

  it('--json checks a node over SSH', async () => {
    const r = await v2vLoad(
      'doctor',
      '--json',
      '--accel',
      'tcg',
      '--dir',
      dir,
      '--host',
      sshd.url,
      '--identity',
      sshd.identity,
      '--known-hosts',
      sshd.knownHosts,
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.node).toBe(sshd.url);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => [c.name, c.ok || !c.required])).toEqual(
      CHECKS.map((c) => [c, true]),
    );
    expect(report.checks[0]?.detail).toMatch(new RegExp(`^${sshd.url}: Linux`));
    expect(report.checks.find((c) => c.name === 'libguestfs')?.detail).toMatch(
      /launched under TCG in [\d.]+ s: TCG as asked/,
    );
    expect(report.domainType).toBe('qemu');
  });

  it('fails with exit 1 and a hint when a required check fails', async () => {
    const r = await v2vLoad(
      'doctor',
      '--json',
      '--no-libguestfs',
      '--dir',
      dir,
      '--min-free',
      '1000000T',
    );
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    const free = report.checks.find((c) => c.name === 'free-space');
    expect(free).toMatchObject({ ok: false, hint: expect.stringMatching(/below the required/) });
    const missing = await v2vLoad('doctor', '--no-libguestfs', '--dir', path.join(dir, 'nope'));
    expect(missing.status).toBe(1);
    expect(missing.stdout).toMatch(/FAIL {2}free-space {2}.*nope is not a directory on local/);
    expect(missing.stdout).toMatch(/hint: create it, or name the datastore directory with --dir/);
  });

  it('exits 3 when the node refuses to be trusted, and skips the rest', async () => {
    const empty = path.join(dir, 'known_hosts');
    await fs.writeFile(empty, '');
    const r = await v2vLoad(
      'doctor',
      '--json',
      '--host',
      sshd.url,
      '--identity',
      sshd.identity,
      '--known-hosts',
      empty,
    );
    expect(r.status).toBe(3);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.checks[0]).toMatchObject({
      name: 'node',
      ok: false,
      detail: expect.stringContaining(
        `host key of ${sshd.url} (${sshd.hostKeyFingerprint}) is not in ${empty}`,
      ),
      hint: expect.stringMatching(/--accept-new-host-key/),
    });
    expect(report.checks.slice(1).every((c) => c.skipped)).toBe(true);
  });
});
