/**
 * `v2v-load convert --with kernel=PKG.deb` end to end: the VMware Debian fixture with its only
 * kernel stripped of virtio_blk (the "novirtio" guest of convert.test.ts, here kept as a .vmx
 * and .vmdk) converts with the host's own linux-image .deb (test/harness/kernel-package.ts):
 * the package is installed in the guest by its dpkg (its scripts make the initramfs and the
 * grub entry inside the appliance), then the guest is inspected again and the plan extends
 * that kernel's initramfs with virtio and names the target disks. The output is read back
 * with guestfish, read-only; the source stays byte-identical.
 *
 * No boot here: the conversion alone takes minutes under TCG (dpkg unpacks some 400 MB and
 * update-initramfs and update-grub run in the appliance).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';
import { type DebianGuest, debianGuest } from '../harness/debian-guest.js';
import { sha256File } from '../harness/hash.js';
import { hostKernelDeb, type KernelDeb } from '../harness/kernel-package.js';

const exec = promisify(execFile);

const sha256 = sha256File;

interface ResultJson {
  disks: { path: string }[];
  xmlPath: string;
  guest: { kernels: string[] };
  plan: string[];
  warnings: string[];
  notes?: string[];
  stages: Record<string, number>;
}

function resultOf(stdout: string): ResultJson | undefined {
  const line = stdout
    .trim()
    .split('\n')
    .find((l) => l.startsWith('{"event":"result"'));
  return line ? (JSON.parse(line) as ResultJson) : undefined;
}

/** The names in the newc cpio archives of `buf`, one after another (NUL padding between). */
function newcNames(buf: Buffer): string[] {
  const names: string[] = [];
  const field = (at: number, i: number) =>
    Number.parseInt(buf.subarray(at + 6 + i * 8, at + 14 + i * 8).toString('latin1'), 16);
  const pad4 = (n: number) => (n + 3) & ~3;
  let at = 0;
  while (at < buf.length) {
    if (buf[at] === 0) {
      at++;
      continue;
    }
    if (buf.subarray(at, at + 6).toString('latin1') !== '070701') {
      throw new Error(`not a newc archive at ${at}`);
    }
    const fileSize = field(at, 6);
    const nameSize = field(at, 11);
    const name = buf.subarray(at + 110, at + 110 + nameSize - 1).toString('utf8');
    at = pad4(pad4(at + 110 + nameSize) + fileSize);
    if (name !== 'TRAILER!!!') names.push(name);
  }
  return names;
}

/** The stanza of `name` in a dpkg status file. */
function dpkgStanza(status: string, name: string): string | undefined {
  return status.split(/\n\n+/).find((s) => s.startsWith(`Package: ${name}\n`));
}

let work: string;
let base: DebianGuest;
let kdeb: KernelDeb;
let vmx: string;
let vmdk: string;
/** The kernel release of the guest before (its only kernel, without virtio_blk). */
let guestRelease: string;

beforeAll(async () => {
  work = await fs.mkdtemp('/var/tmp/v2v-load-convert-kernel-it-');
  await fs.chmod(work, 0o755);
  base = await debianGuest('base');
  kdeb = await hostKernelDeb();
  // A VMware guest of its own: the base's disk, its only kernel without virtio_blk.
  const src = path.join(work, 'src');
  await fs.mkdir(src, { mode: 0o755 });
  vmdk = path.join(src, path.basename(base.vmdk as string));
  vmx = path.join(src, path.basename(base.vmx as string));
  await fs.copyFile(base.vmx as string, vmx);
  await exec('qemu-img', [
    'convert',
    '-q',
    '-f',
    'vmdk',
    '-O',
    'vmdk',
    '-o',
    'subformat=monolithicSparse',
    base.vmdk as string,
    vmdk,
  ]);
  const { stdout } = await exec('guestfish', [
    '-a',
    vmdk,
    'run',
    ':',
    'mount',
    '/dev/sda1',
    '/',
    ':',
    'sh',
    'rm -f /lib/modules/*/kernel/drivers/block/virtio_blk.ko* && sed -i /virtio_blk/d /lib/modules/*/modules.dep /lib/modules/*/modules.builtin && ls /lib/modules',
  ]);
  guestRelease = stdout.trim();
}, 1_800_000);

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('convert --with kernel=PKG.deb (a guest whose kernel lacks virtio)', () => {
  it('a --with file that does not exist: a usage error before anything is written', async () => {
    const out = path.join(work, 'missing');
    await fs.mkdir(out);
    const r = await cli('convert', vmx, '--with', `kernel=${work}/nowhere.deb`, '-o', out);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--with kernel=${work}/nowhere.deb: no such file on`);
    expect(await fs.readdir(out)).toEqual([]);
  });

  it('--dry-run shows the install first and installs nothing', async () => {
    const out = path.join(work, 'dry-run');
    await fs.mkdir(out);
    const before = await sha256(vmdk);
    const r = await cli('convert', vmx, '--with', `kernel=${kdeb.deb}`, '-o', out, '--dry-run');
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    expect(r.stdout).toContain('Plan (nothing was written):');
    expect(r.stdout).toContain('run dpkg -i /var/tmp/v2v-load-kernel-package');
    expect(r.stdout).toContain('a dry run installs nothing');
    expect(await fs.readdir(out)).toEqual([]);
    expect(await sha256(vmdk)).toBe(before);
  }, 600_000);

  it('installs the package with the guest dpkg; its kernel gets virtio in its initramfs and boots from vda', async () => {
    const rel = kdeb.release;
    const out = path.join(work, 'out');
    await fs.mkdir(out, { mode: 0o755 });
    const before = await sha256(vmdk);
    const r = await cli(
      'convert',
      vmx,
      '--with',
      `kernel=${kdeb.deb}`,
      '-o',
      out,
      '--domain-type',
      'qemu',
      '--json',
    );
    const result = resultOf(r.stdout);
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    if (!result) throw new Error('no result line');
    expect(await sha256(vmdk)).toBe(before);

    // The plan: the install first, then the kernel it brought (inspected again) is extended.
    const plan = result.plan.join('\n');
    expect(plan).toMatch(/upload \S+\.deb \(node\) to \/var\/tmp\/v2v-load-kernel-package/);
    expect(plan).toContain('run dpkg -i /var/tmp/v2v-load-kernel-package');
    expect(plan).toMatch(
      new RegExp(
        `extend /boot/initrd\\.img-${rel.replace(/\./g, '\\.')} with virtio_pci, virtio_blk`,
      ),
    );
    expect(result.guest.kernels).toContain(rel);
    expect(result.guest.kernels).toContain(guestRelease);
    expect(result.stages.prerequisites).toBeGreaterThan(0);
    const xml = await fs.readFile(result.xmlPath, 'utf8');
    expect(xml).toContain('<target dev="vda" bus="virtio"/>');

    // The output, read back read-only.
    const disk = result.disks[0]?.path as string;
    const initrd = path.join(work, 'initrd.img');
    const preInitrd = path.join(work, 'initrd.img.pre');
    const { stdout } = await exec(
      'guestfish',
      [
        '--ro',
        '-a',
        disk,
        '-i',
        'echo',
        '==status',
        ':',
        'cat',
        '/var/lib/dpkg/status',
        ':',
        'echo',
        '==grub',
        ':',
        'cat',
        '/boot/grub/grub.cfg',
        ':',
        'echo',
        '==block',
        ':',
        'ls',
        `/lib/modules/${rel}/kernel/drivers/block`,
        ':',
        'echo',
        '==vartmp',
        ':',
        'ls',
        '/var/tmp',
        ':',
        'echo',
        '==end',
        ':',
        'download',
        `/boot/initrd.img-${rel}`,
        initrd,
        ':',
        'download',
        `/boot/initrd.img-${rel}.pre-v2v-load`,
        preInitrd,
      ],
      { maxBuffer: 64 << 20 },
    );
    const part = (name: string) => stdout.split(`==${name}\n`)[1]?.split(/\n==\w+\n/)[0] ?? '';
    const stanza = dpkgStanza(part('status'), kdeb.package);
    expect(stanza).toContain('Status: install ok installed');
    expect(stanza).toContain(`Version: ${kdeb.version}`);
    expect(part('block').split('\n')).toContain('virtio_blk.ko');
    expect(part('vartmp')).not.toContain('v2v-load-kernel-package');
    // grub boots the new kernel by default (first entry), root= on the virtio disk.
    const grub = part('grub');
    const linux = grub.match(/^\s*linux\s+(\S+)\s+(.*)$/m);
    expect(linux?.[1]).toBe(`/boot/vmlinuz-${rel}`);
    expect(linux?.[2]).toMatch(/root=(\/dev\/vda1|UUID=[-0-9a-f]+)\s/);
    expect(grub).not.toMatch(/root=\/dev\/sd/);
    // The initramfs of that kernel: the one its package's scripts made (kept beside it, and
    // without virtio_blk: the guest lists its initramfs modules), then one more archive with
    // virtio_blk, what it needs and the module index, as the kernel unpacks them in turn.
    const image = await fs.readFile(initrd);
    const own = await fs.readFile(preInitrd);
    expect(image.subarray(0, own.length).equals(own)).toBe(true);
    const { stdout: ownListing } = await exec('lsinitramfs', [preInitrd], { maxBuffer: 64 << 20 });
    expect(ownListing).not.toContain('virtio_blk.ko');
    let tail = own.length;
    while (image[tail] === 0) tail++;
    const added = newcNames(gunzipSync(image.subarray(tail)));
    const mods = added.find((n) => n.endsWith(`lib/modules/${rel}`)) as string;
    expect(mods).toMatch(/^(usr\/)?lib\/modules\//);
    expect(added).toEqual(
      expect.arrayContaining([
        `${mods}/kernel/drivers/block/virtio_blk.ko`,
        `${mods}/kernel/drivers/net/virtio_net.ko`,
        `${mods}/modules.dep`,
        `${mods}/modules.alias.bin`,
      ]),
    );
  }, 1_800_000);
});
