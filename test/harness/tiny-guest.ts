/**
 * A guest that boots in seconds under TCG: the host kernel from /boot plus a tiny initrd whose
 * /init (tiny-init.c, compiled static) prints {@link TINY_BOOT_MARKER} on ttyS0 and powers off
 * when the ACPI power button is pressed. Built once and cached under
 * /var/tmp/v2v-load-fixtures/<sha256 of the inputs>/ (outside the repo), 0755 so QEMU
 * (libvirt-qemu) can read it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Node } from '../../src/node/node.js';
import type { DomainDefinition } from '../../src/provisioning/libvirt/domain-xml-types.js';

const exec = promisify(execFile);
const INIT_SOURCE = path.join(import.meta.dirname, 'tiny-init.c');
const FIXTURES = '/var/tmp/v2v-load-fixtures';
const BUILDER_VERSION = 'tiny-guest-1';

/** Printed on the serial console once /init runs. */
export const TINY_BOOT_MARKER = 'V2VLOAD-TINY-BOOTED';
/** Printed once /init listens for the power button (after the boot marker). */
export const TINY_READY_MARKER = 'V2VLOAD-TINY-WAITING';
/** Printed when /init saw the power button and is powering off. */
export const TINY_POWEROFF_MARKER = 'V2VLOAD-TINY-POWEROFF';

/** The files of the tiny guest. */
export interface TinyGuestFiles {
  dir: string;
  kernel: string;
  initrd: string;
}

async function newestKernel(): Promise<{ kernel: string; release: string }> {
  const names = (await fs.readdir('/boot')).filter((n) => n.startsWith('vmlinuz-')).sort();
  const last = names.at(-1);
  if (!last) throw new Error('tiny guest: no /boot/vmlinuz-* (install linux-image-amd64)');
  return { kernel: path.join('/boot', last), release: last.slice('vmlinuz-'.length) };
}

function moduleFile(release: string, rel: string): string {
  return path.join('/lib/modules', release, 'kernel', rel);
}

/** Builds (or finds in the cache) the kernel + initrd of the tiny guest. */
export async function buildTinyGuest(): Promise<TinyGuestFiles> {
  const { kernel, release } = await newestKernel();
  const modules = [
    moduleFile(release, 'drivers/acpi/button.ko'),
    moduleFile(release, 'drivers/input/evdev.ko'),
  ];
  const hash = createHash('sha256').update(BUILDER_VERSION);
  for (const f of [INIT_SOURCE, kernel, ...modules]) {
    hash.update(f).update(await fs.readFile(f));
  }
  const dir = path.join(FIXTURES, hash.digest('hex').slice(0, 32));
  const files: TinyGuestFiles = {
    dir,
    kernel: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd.cpio'),
  };
  try {
    await fs.access(files.initrd);
    return files;
  } catch {
    // build below
  }
  await fs.mkdir(FIXTURES, { recursive: true, mode: 0o755 });
  await fs.chmod(FIXTURES, 0o755);
  const work = await fs.mkdtemp(path.join(FIXTURES, 'build-'));
  try {
    const root = path.join(work, 'root');
    for (const d of ['proc', 'sys', 'dev', 'modules']) {
      await fs.mkdir(path.join(root, d), { recursive: true });
    }
    await exec('gcc', ['-static', '-Os', '-o', path.join(root, 'init'), INIT_SOURCE]);
    for (const m of modules) await fs.copyFile(m, path.join(root, 'modules', path.basename(m)));
    const entries = ['.', 'init', 'proc', 'sys', 'dev', 'modules'].concat(
      modules.map((m) => `modules/${path.basename(m)}`),
    );
    const out = path.join(work, 'initrd.cpio');
    await new Promise<void>((resolve, reject) => {
      const child = execFile(
        'cpio',
        ['--quiet', '-o', '-H', 'newc', '-O', out],
        { cwd: root },
        (err) => (err ? reject(err) : resolve()),
      );
      child.stdin?.end(`${entries.join('\n')}\n`);
    });
    await fs.copyFile(kernel, path.join(work, 'vmlinuz'));
    await fs.rm(root, { recursive: true });
    await fs.chmod(work, 0o755);
    for (const f of ['vmlinuz', 'initrd.cpio']) await fs.chmod(path.join(work, f), 0o644);
    try {
      await fs.rename(work, dir);
    } catch {
      // another run built it first
      await fs.rm(work, { recursive: true, force: true });
    }
    return files;
  } catch (e) {
    await fs.rm(work, { recursive: true, force: true });
    throw e;
  }
}

/** The typed definition of a tiny guest named `name` logging its console to `consoleLog`. */
export function tinyGuestDefinition(
  name: string,
  files: TinyGuestFiles,
  consoleLog: string,
): DomainDefinition {
  return {
    type: 'qemu',
    name,
    memoryKiB: 256 * 1024,
    vcpus: 1,
    os: {
      type: 'hvm',
      arch: 'x86_64',
      kernel: files.kernel,
      initrd: files.initrd,
      cmdline: 'console=ttyS0 panic=-1 quiet loglevel=1',
    },
    features: { acpi: true, apic: true },
    onPoweroff: 'destroy',
    onReboot: 'restart',
    onCrash: 'destroy',
    serials: [{ type: 'file', path: consoleLog, append: true }],
  };
}

/** Polls a console log on `node` until it holds `marker` `count` times; false on timeout. */
export async function waitForConsole(
  node: Node,
  file: string,
  marker: string,
  timeoutMs: number,
  count = 1,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await node.stat(file);
    if (st) {
      const text = (await node.readFile(file)).toString('utf8');
      if (text.split(marker).length - 1 >= count) return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}
