import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  parseDf,
  parseQemuImgVersion,
  parseVirshVersion,
} from '../../src/doctor/checks.js';
import { type DoctorReport, formatDoctorReport } from '../../src/doctor/doctor.js';
import { UsageError } from '../../src/errors.js';
import { parseSize } from '../../src/util/size.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/doctor');
const golden = (name: string) => fs.readFile(path.join(GOLDEN, name), 'utf8');

describe('doctor parsers (real output captured on Debian 12)', () => {
  it('qemu-img --version', async () => {
    expect(parseQemuImgVersion(await golden('qemu-img-version.txt'))).toBe('7.2.22');
  });

  it('virsh version', async () => {
    expect(parseVirshVersion(await golden('virsh-version.txt'))).toEqual({
      hypervisor: 'QEMU 7.2.22',
      library: 'libvirt 9.0.0',
    });
  });

  it('df -P -B1', async () => {
    expect(parseDf(await golden('df.txt'))).toEqual({
      size: 270553174016,
      avail: 83901419520,
      mount: '/',
    });
    expect(parseDf('garbage')).toBeUndefined();
  });

  it('sizes', () => {
    expect(formatBytes(83901419520)).toBe('78.1 GiB');
    expect(formatBytes(512)).toBe('512 B');
    expect(parseSize('1G', '--min-free')).toBe(1024 ** 3);
    expect(parseSize('512M', '--min-free')).toBe(512 * 1024 ** 2);
    expect(parseSize('1.5KiB', '--min-free')).toBe(1536);
    expect(parseSize('100', '--min-free')).toBe(100);
    expect(() => parseSize('lots', '--min-free')).toThrow(UsageError);
  });
});

describe('doctor report printer', () => {
  const report: DoctorReport = {
    node: 'ssh://root@vmhost1:22',
    ok: false,
    domainType: 'qemu',
    checks: [
      {
        name: 'node',
        ok: true,
        required: true,
        detail: 'ssh://root@vmhost1:22: Linux 6.1.0-56-amd64 x86_64',
        durationMs: 3,
      },
      { name: 'qemu-img', ok: true, required: true, detail: 'qemu-img 7.2.22', durationMs: 20 },
      {
        name: 'libvirtd',
        ok: false,
        required: true,
        detail:
          '`virsh -c qemu:///system version` exited with code 1: error: failed to connect to the hypervisor',
        hint: 'start libvirtd for qemu:///system (without systemd: `virtlogd -d` then `libvirtd -d`)',
        durationMs: 40,
      },
      {
        name: 'kvm',
        ok: false,
        required: false,
        detail: '/dev/kvm is missing or not writable: guests run under TCG emulation (slow)',
        hint: "define domains with type 'qemu'",
        durationMs: 1,
      },
      {
        name: 'libguestfs',
        ok: true,
        required: true,
        skipped: true,
        detail: 'skipped (--no-libguestfs)',
        durationMs: 0,
      },
    ],
  };

  it('prints one line a check, hints under failures (golden)', async () => {
    await expect(formatDoctorReport(report)).toMatchFileSnapshot(path.join(GOLDEN, 'report.txt'));
  });
});
