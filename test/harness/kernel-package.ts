/**
 * A real Debian kernel package for `convert --with kernel=`, from this machine only (no
 * network): the host's installed `linux-image-<release>` package (install-deps.sh installs
 * linux-image-amd64 for the libguestfs appliance), as apt downloaded it when its .deb is still
 * in apt's cache, else rebuilt from the installed files with dpkg-repack (same control fields,
 * maintainer scripts and files). Either way it is what an admin would give: a whole
 * linux-image .deb, with the scripts that make its initramfs and boot entry.
 *
 * Cached in /var/tmp/v2v-load-fixtures/kernel-deb-<key>/, keyed by the package's name,
 * version and architecture.
 *
 * ```ts
 * const k = await hostKernelDeb();
 * // k.deb, k.package (linux-image-6.1.0-57-amd64), k.version (6.1.192-3), k.release (6.1.0-57-amd64)
 * ```
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const FIXTURES = '/var/tmp/v2v-load-fixtures';
const BUILDER_VERSION = 'kernel-deb-1';
const APT_CACHE = '/var/cache/apt/archives';

export interface KernelDeb {
  /** The .deb file (read-only: copy it to change it). */
  deb: string;
  package: string;
  version: string;
  arch: string;
  /** The kernel release it installs (/lib/modules/<release>, /boot/vmlinuz-<release>). */
  release: string;
  /** How it was made: apt's cached download, or dpkg-repack of the installed package. */
  from: 'apt-cache' | 'dpkg-repack';
}

/** The newest installed linux-image-<release> package of the host (not a meta-package). */
async function installedKernel(): Promise<{ package: string; version: string; arch: string }> {
  const { stdout } = await exec('dpkg-query', [
    '-W',
    '-f',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own field syntax
    '${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n',
    'linux-image-[0-9]*',
  ]);
  const rows = stdout
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(
      ([p, , , s]) => s?.startsWith('ii') && !/-(unsigned|dbg)$/.test(p as string) && p !== '',
    );
  const names = rows
    .map((r) => r[0] as string)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const newest = rows.find((r) => r[0] === names.at(-1));
  if (!newest) {
    throw new Error(
      'no linux-image-<release> package is installed (scripts/install-deps.sh installs one)',
    );
  }
  return { package: newest[0] as string, version: newest[1] as string, arch: newest[2] as string };
}

/** apt's file name of a package (the epoch's colon is written %3a). */
function debName(p: { package: string; version: string; arch: string }): string {
  return `${p.package}_${p.version.replace(':', '%3a')}_${p.arch}.deb`;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Returns the host kernel's .deb, made and cached on first use (dpkg-repack takes minutes). */
export async function hostKernelDeb(): Promise<KernelDeb> {
  const pkg = await installedKernel();
  const key = createHash('sha256')
    .update(`${BUILDER_VERSION}\0${pkg.package}\0${pkg.version}\0${pkg.arch}`)
    .digest('hex')
    .slice(0, 24);
  const dir = path.join(FIXTURES, `kernel-deb-${key}`);
  const deb = path.join(dir, debName(pkg));
  const meta = path.join(dir, 'DONE');
  const release = pkg.package.replace(/^linux-image-/, '');
  if (await exists(meta)) {
    const { from } = JSON.parse(await fs.readFile(meta, 'utf8')) as Pick<KernelDeb, 'from'>;
    return { deb, ...pkg, release, from };
  }
  await fs.mkdir(FIXTURES, { recursive: true, mode: 0o755 });
  const work = await fs.mkdtemp(`${dir}.build-`);
  try {
    let from: KernelDeb['from'];
    const cached = path.join(APT_CACHE, debName(pkg));
    if (await exists(cached)) {
      await fs.copyFile(cached, path.join(work, debName(pkg)));
      from = 'apt-cache';
    } else {
      await exec('dpkg-repack', [pkg.package], { cwd: work, maxBuffer: 16 << 20 });
      from = 'dpkg-repack';
    }
    // The file is the package it claims to be.
    const { stdout } = await exec('dpkg-deb', [
      '-f',
      path.join(work, debName(pkg)),
      'Package',
      'Version',
    ]);
    if (stdout.trim() !== `Package: ${pkg.package}\nVersion: ${pkg.version}`) {
      throw new Error(`${debName(pkg)}: unexpected control fields: ${stdout}`);
    }
    await fs.writeFile(path.join(work, 'DONE'), `${JSON.stringify({ from, ...pkg })}\n`);
    await fs.chmod(work, 0o755);
    await fs.rename(work, dir).catch(async (e: NodeJS.ErrnoException) => {
      // built by another process meanwhile
      if (!(await exists(meta))) throw e;
    });
    return { deb, ...pkg, release, from };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
