/**
 * The synthetic Windows guests of the conversion tests (there is no Windows install here): an
 * NTFS disk with SYSTEM and SOFTWARE hives (empty hives written by
 * test/fixtures/windows-guest/empty_hive.py, grown with hivexregedit; nothing from outside the
 * repository) and a PE stub as cmd.exe, enough for libguestfs inspection and hivex. Windows XP
 * (5.1), Server 2003 (5.2), 7 (6.1, Select\Current = 2) and Server 2019 (10.0), each with VMware
 * services, exported as VMDK + .vmx; a disk without Windows; a Windows 7 disk whose SYSTEM hive
 * is damaged; a fake virtio-win tree (placeholder drivers in the ISO's layout) and its ISO.
 *
 * Built by test/fixtures/windows-guest/build.py (guests.json says what each holds), all disks
 * in one libguestfs appliance, and cached by builder hash:
 *   /var/tmp/v2v-load-fixtures/windows-<key>/
 * Never write the cached files: copy them.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

const BUILDER = path.resolve(import.meta.dirname, '../fixtures/windows-guest');
/** The builder's files: the key hashes them, so a change to any of them rebuilds. */
const BUILDER_FILES = ['build.py', 'empty_hive.py', 'guests.json'];
const FIXTURES = '/var/tmp/v2v-load-fixtures';
const BUILDER_VERSION = 'windows-guests-1';

export const WINDOWS_GUESTS = ['winxp', 'win2003', 'win7', 'win2019'] as const;
export type WindowsGuestName = (typeof WINDOWS_GUESTS)[number];

export interface WindowsGuest {
  name: WindowsGuestName | 'broken' | 'nowin';
  dir: string;
  vmdk: string;
  vmx: string;
  /** The hives as they were put in the guest (absent for nowin). */
  system: string;
  software: string;
}

export interface WindowsFixtures {
  dir: string;
  guests: Record<WindowsGuestName | 'broken' | 'nowin', WindowsGuest>;
  /** The fake virtio-win tree and its ISO. */
  virtioWinDir: string;
  virtioWinIso: string;
}

async function builderKey(): Promise<string> {
  const h = createHash('sha256').update(BUILDER_VERSION);
  for (const f of BUILDER_FILES) {
    h.update(`\0${f}\0`).update(await fs.readFile(path.join(BUILDER, f)));
  }
  return h.digest('hex').slice(0, 24);
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

function alive(pid: number): Promise<boolean> {
  return fs
    .readFile(`/proc/${pid}/stat`, 'utf8')
    .then((s) => !/^\d+ \(.*\) [ZX]/.test(s))
    .catch(() => false);
}

async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const fh = await fs.open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number((await fs.readFile(lock, 'utf8').catch(() => '')).trim());
      if (owner && (await alive(owner))) await new Promise((r) => setTimeout(r, 2000));
      else await fs.rm(lock, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { force: true });
  }
}

async function build(work: string): Promise<void> {
  const log = path.join(work, 'build.log');
  const fh = await fs.open(log, 'a');
  try {
    const code = await new Promise<number | string>((resolve) => {
      const child = spawn('/usr/bin/python3', [path.join(BUILDER, 'build.py'), work], {
        stdio: ['ignore', fh.fd, fh.fd],
        env: {
          ...process.env,
          LIBGUESTFS_BACKEND: 'direct',
          LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg',
        },
      });
      child.on('error', (e) => resolve(e.message));
      child.on('exit', (c, s) => resolve(s ?? c ?? 1));
    });
    if (code !== 0) {
      const tail = (await fs.readFile(log, 'utf8')).split('\n').slice(-30).join('\n');
      throw new Error(`windows guest fixture: build.py failed (${code}):\n${tail}`);
    }
  } finally {
    await fh.close();
  }
}

/** The fixtures, built first when the cache lacks them (one appliance, well under a minute). */
export async function windowsGuests(): Promise<WindowsFixtures> {
  await fs.mkdir(FIXTURES, { recursive: true, mode: 0o755 });
  const dir = path.join(FIXTURES, `windows-${await builderKey()}`);
  if (!(await exists(path.join(dir, 'DONE')))) {
    await withLock(`${dir}.lock`, async () => {
      if (await exists(path.join(dir, 'DONE'))) return;
      const work = `${dir}.build`;
      await fs.rm(work, { recursive: true, force: true });
      await fs.mkdir(work, { recursive: true, mode: 0o755 });
      const t0 = Date.now();
      await build(work);
      await fs.writeFile(
        path.join(work, 'DONE'),
        `${JSON.stringify({ seconds: (Date.now() - t0) / 1000, at: new Date().toISOString() })}\n`,
      );
      await fs.rm(dir, { recursive: true, force: true });
      await fs.rename(work, dir);
    });
  }
  const guest = (name: WindowsGuest['name']): WindowsGuest => ({
    name,
    dir: path.join(dir, name),
    vmdk: path.join(dir, name, `${name}.vmdk`),
    vmx: path.join(dir, name, `${name}.vmx`),
    system: path.join(dir, name, 'SYSTEM'),
    software: path.join(dir, name, 'SOFTWARE'),
  });
  return {
    dir,
    guests: {
      winxp: guest('winxp'),
      win2003: guest('win2003'),
      win7: guest('win7'),
      win2019: guest('win2019'),
      broken: guest('broken'),
      nowin: guest('nowin'),
    },
    virtioWinDir: path.join(dir, 'virtio-win'),
    virtioWinIso: path.join(dir, 'virtio-win.iso'),
  };
}
