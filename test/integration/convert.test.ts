/**
 * `v2v-load convert` end to end on the realistic Debian fixtures (test/harness/debian-guest.ts):
 * every variant converts, then boots under TCG on virtio hardware to its markers, with VMware
 * Tools gone, / on vd*, the console on ttyS0 and its interface name (and static address) kept;
 * the source is never written. One conversion per variant; --no-virtio and the other storage
 * modes on the base guest; failures on cheap derived disks.
 *
 * TCG work dominates, and the machine has 2 cores: the conversions (and their boots) run two
 * at a time in the set-up, and the tests then look at what each produced.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvmWorks } from '../../src/hvtarget/kvm-probe.js';
import { LocalNode } from '../../src/node/local-node.js';
import { type BootResult, bootDisk, STUCK_PATTERNS } from '../harness/boot.js';
import { cli } from '../harness/cli.js';
import { type DebianGuest, type DebianVariant, debianGuest } from '../harness/debian-guest.js';
import { sha256File as sha256 } from '../harness/hash.js';
import { scratchOf } from '../harness/scratch.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/v2v-load.js');

interface ConvertResultJson {
  name: string;
  disks: { path: string; format: string; dev: string }[];
  xmlPath: string;
  interfaces: { name: string; mac: string; addresses: string[] }[];
  stages: Record<string, number>;
  plan: string[];
  warnings: string[];
  verify?: { booted: boolean; matched?: string; reason?: string; consoleTail: string };
}

interface Job {
  /** Exit status and output of the conversion. */
  status: number;
  stdout: string;
  stderr: string;
  result?: ConvertResultJson;
  /** sha256 of the source disk before and after. */
  before: string;
  after: string;
  boot?: BootResult;
  out: string;
}

let work: string;
let broken: string;
const guests = new Map<DebianVariant, DebianGuest>();
const jobs = new Map<string, Job>();

async function outDir(name: string): Promise<string> {
  const d = path.join(work, name);
  await fs.mkdir(d, { recursive: true, mode: 0o755 });
  return d;
}

/** Runs one conversion (in process), then optionally boots its first disk. */
async function runJob(
  id: string,
  sourceDisk: string,
  args: string[],
  boot?: { hardware: 'virtio' | 'ide'; mac: string },
): Promise<void> {
  const out = await outDir(id);
  const before = await sha256(sourceDisk);
  const r = await cli('convert', ...args, '-o', out, '--domain-type', 'qemu', '--json');
  const after = await sha256(sourceDisk);
  const job: Job = { status: r.status, stdout: r.stdout, stderr: r.stderr, before, after, out };
  const line = r.stdout
    .trim()
    .split('\n')
    .find((l) => l.startsWith('{"event":"result"'));
  if (line) job.result = JSON.parse(line) as ConvertResultJson;
  if (boot && r.status === 0 && job.result?.disks[0]) {
    job.boot = await bootDisk({
      image: job.result.disks[0].path,
      format: 'qcow2',
      hardware: boot.hardware,
      mac: boot.mac,
      stopOn: STUCK_PATTERNS,
      timeoutMs: 420_000,
    });
  }
  jobs.set(id, job);
}

function job(id: string): Job & { result: ConvertResultJson } {
  const j = jobs.get(id);
  if (!j) throw new Error(`job ${id} did not run`);
  if (j.status !== 0 || !j.result) {
    throw new Error(`convert (${id}) failed with ${j.status}:\n${j.stderr.slice(-4000)}`);
  }
  return j as Job & { result: ConvertResultJson };
}

function booted(id: string): BootResult {
  const b = job(id).boot;
  if (!b?.reached) {
    throw new Error(`converted ${id} did not boot:\n${b?.log.slice(-3000) ?? 'no boot'}`);
  }
  return b;
}

beforeAll(async () => {
  work = await fs.mkdtemp('/var/tmp/v2v-load-convert-it-');
  await fs.chmod(work, 0o755);
  for (const v of ['base', 'uuid', 'static-ip', 'dracut', 'xen-pv'] as const) {
    guests.set(v, await debianGuest(v));
  }
  const g = (v: DebianVariant) => guests.get(v) as DebianGuest;
  const base = g('base');
  // Private copies for the modes that keep pointing at (snapshot) or write (in-place) the source.
  const snapSrc = await outDir('snapshot-src');
  const inplaceSrc = await outDir('in-place-src');
  for (const d of [snapSrc, inplaceSrc]) {
    await fs.copyFile(base.vmdk as string, path.join(d, path.basename(base.vmdk as string)));
    await fs.copyFile(base.vmx as string, path.join(d, path.basename(base.vmx as string)));
  }
  // Broken guests, derived from the base in one appliance: no kernel with virtio, and no
  // package database.
  broken = await outDir('broken-src');
  // Standalone copies: an overlay's backing file in the fixture cache would be refused by the
  // backing-file policy (its directory is not allowed), which is not what these tests test.
  for (const n of ['novirtio', 'nodpkg']) {
    await exec('qemu-img', [
      'convert',
      '-q',
      '-f',
      'vmdk',
      '-O',
      'qcow2',
      base.vmdk as string,
      path.join(broken, `${n}.qcow2`),
    ]);
  }
  await exec('guestfish', [
    '-a',
    path.join(broken, 'novirtio.qcow2'),
    '-a',
    path.join(broken, 'nodpkg.qcow2'),
    'run',
    ':',
    'mount',
    '/dev/sda1',
    '/',
    ':',
    'sh',
    'rm -f /lib/modules/*/kernel/drivers/block/virtio_blk.ko* && sed -i /virtio_blk/d /lib/modules/*/modules.dep /lib/modules/*/modules.builtin',
    ':',
    'umount-all',
    ':',
    'mount',
    '/dev/sdb1',
    '/',
    ':',
    'rm',
    '/var/lib/dpkg/status',
  ]);
}, 3_600_000);

/** The conversions (and boots), two at a time, once for the describes that look at them. */
let conversionsDone: Promise<void> | undefined;
function conversions(): Promise<void> {
  conversionsDone ??= (async () => {
    const g = (v: DebianVariant) => guests.get(v) as DebianGuest;
    const base = g('base');
    const snapSrc = path.join(work, 'snapshot-src');
    const inplaceSrc = path.join(work, 'in-place-src');
    const limit = pLimit(2);
    const v = (id: DebianVariant, extra: string[] = []) =>
      limit(() =>
        runJob(id, g(id).disk, [(g(id).vmx ?? g(id).libvirtXml) as string, ...extra], {
          hardware: 'virtio',
          mac: g(id).mac,
        }),
      );
    await Promise.all([
      v('base'),
      v('uuid'),
      // The guest's own initramfs rebuild (the default extends the image instead).
      v('static-ip', ['--initramfs', 'rebuild']),
      v('dracut'),
      v('xen-pv', ['-i', 'libvirtxml']),
      limit(() =>
        // From the OVA: its disk is read in place from the tar (no extraction).
        runJob('no-virtio', base.ova as string, [base.ova as string, '--no-virtio'], {
          hardware: 'ide',
          mac: base.mac,
        }),
      ),
      limit(() =>
        runJob('snapshot', path.join(snapSrc, path.basename(base.vmdk as string)), [
          path.join(snapSrc, path.basename(base.vmx as string)),
          '--storage',
          'snapshot',
          // Boots a throwaway overlay over the output, itself an overlay over the source.
          '--verify-boot',
          '--verify-timeout',
          '420',
        ]),
      ),
      limit(() =>
        runJob('in-place', path.join(inplaceSrc, path.basename(base.vmdk as string)), [
          path.join(inplaceSrc, path.basename(base.vmx as string)),
          '--storage',
          'in-place',
        ]),
      ),
    ]);
  })();
  return conversionsDone;
}

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('every variant converts and boots on virtio', () => {
  beforeAll(() => conversions(), 3_600_000);
  it('base (VMware, .vmx): VMware Tools gone, / and root= on vda1, ens192 kept on its MAC', () => {
    const g = guests.get('base') as DebianGuest;
    const j = job('base');
    expect(j.after).toBe(j.before);
    const b = booted('base');
    expect(b.markers.vmtools).toBe('absent');
    expect(b.markers.root).toBe('/dev/vda1');
    expect(b.markers.cmdline).toMatch(/root=\/dev\/vda1 /);
    expect(b.markers.ifaces.map((i) => [i.name, i.mac])).toEqual([['ens192', g.mac]]);
    expect(j.result.interfaces.map((i) => [i.name, i.mac])).toEqual([['ens192', g.mac]]);
    expect(j.result.disks.map((d) => d.path)).toEqual([path.join(j.out, `${g.name}-sda.qcow2`)]);
    // The default extends the guest's initramfs with the virtio modules, no rebuild.
    expect(j.result.plan.join('\n')).toMatch(
      /extend \/boot\/initrd\.img-\S+ with virtio_pci, virtio_blk/,
    );
    expect(j.result.plan.join('\n')).not.toMatch(/update-initramfs/);
    for (const s of ['read-metadata', 'open-guest', 'inspect', 'plan', 'apply', 'storage-finish']) {
      expect(j.result.stages[s], s).toBeGreaterThanOrEqual(0);
    }
  });

  it('snapshot: --verify-boot booted a throwaway copy to userspace and left nothing behind', async () => {
    const j = job('snapshot');
    expect(j.result.verify?.booted, j.result.verify?.consoleTail).toBe(true);
    const { stdout: doms } = await exec('virsh', [
      '-c',
      'qemu:///system',
      'list',
      '--all',
      '--name',
    ]);
    expect(doms).not.toContain('-verify-');
    const { stdout: nets } = await exec('virsh', [
      '-c',
      'qemu:///system',
      'net-list',
      '--all',
      '--name',
    ]);
    expect(nets).not.toContain('v2v-load-verify-');
    const left = (await fs.readdir('/var/tmp')).filter((f) => f.startsWith('v2v-load-verify-'));
    expect(left).toEqual([]);
  });

  it('base: the domain XML keeps the MAC, uses virtio and the asked domain type', async () => {
    const g = guests.get('base') as DebianGuest;
    const xml = await fs.readFile(job('base').result.xmlPath, 'utf8');
    expect(xml).toContain('<domain type="qemu">');
    expect(xml).toContain(`<mac address="${g.mac}"/>`);
    expect(xml).toContain('<target dev="vda" bus="virtio"/>');
    expect(xml).toContain('<model type="virtio"/>');
  });

  it('uuid: root=UUID kept, VMware Tools gone', () => {
    const b = booted('uuid');
    // fstab names the root by UUID: nothing to rename there.
    expect(job('uuid').result.plan.join('\n')).not.toMatch(/edit \/etc\/fstab/);
    expect(b.markers.cmdline).toMatch(/root=UUID=/);
    expect(b.markers.vmtools).toBe('absent');
  });

  it('static-ip (--initramfs rebuild): the static address is up on the same interface name', () => {
    const g = guests.get('static-ip') as DebianGuest;
    const b = booted('static-ip');
    expect(job('static-ip').result.plan.join('\n')).toMatch(/run update-initramfs -u -k \S+/);
    const iface = b.markers.ifaces.find((i) => i.name === 'ens192');
    expect(iface?.mac).toBe(g.mac);
    expect(iface?.ipv4).toContain('10.0.2.15/24');
    expect(job('static-ip').result.interfaces).toEqual([
      expect.objectContaining({ name: 'ens192', mac: g.mac, addresses: ['10.0.2.15/24'] }),
    ]);
  });

  it('dracut: its initramfs extended with virtio (no dracut run), / on vda1, VMware Tools gone', () => {
    const g = guests.get('dracut') as DebianGuest;
    const j = job('dracut');
    const plan = j.result.plan.join('\n');
    // The drivers stay in dracut's configuration for the guest's own later rebuilds.
    expect(plan).toMatch(/create \/etc\/dracut\.conf\.d\/\S+: load virtio_pci, virtio_blk/);
    expect(plan).toMatch(/extend \/boot\/initrd\.img-\S+ with virtio_pci, virtio_blk/);
    expect(plan).not.toMatch(/run dracut|update-initramfs/);
    expect(j.after).toBe(j.before);
    const b = booted('dracut');
    expect(b.markers.root).toBe('/dev/vda1');
    expect(b.markers.vmtools).toBe('absent');
    expect(b.markers.ifaces.map((i) => [i.name, i.mac])).toEqual([['ens192', g.mac]]);
  });

  it('xen-pv (libvirt XML): console on ttyS0, / on vda1', () => {
    const b = booted('xen-pv');
    expect(b.markers.root).toBe('/dev/vda1');
    expect(b.markers.cmdline).toMatch(/console=ttyS0/);
    expect(b.markers.cmdline).not.toMatch(/hvc0|xvda/);
  });
});

describe('--no-virtio and the storage modes (base guest)', () => {
  beforeAll(() => conversions(), 3_600_000);
  it('--no-virtio, from the OVA: IDE disk and e1000 in the XML; boots on IDE', async () => {
    const j = job('no-virtio');
    // The OVA is byte-identical and nothing was extracted beside the output.
    expect(j.after).toBe(j.before);
    expect((await fs.readdir(j.out)).sort()).toEqual(
      [path.basename(j.result.xmlPath), ...j.result.disks.map((d) => path.basename(d.path))].sort(),
    );
    const xml = await fs.readFile(j.result.xmlPath, 'utf8');
    expect(xml).toContain('<target dev="hda" bus="ide"/>');
    expect(xml).toContain('<model type="e1000"/>');
    expect(xml).toContain('machine="pc"');
    const b = booted('no-virtio');
    expect(b.markers.root).toBe('/dev/sda1');
    expect(b.markers.vmtools).toBe('absent');
  });

  it('snapshot: the source stays byte-identical; the output is a qcow2 overlay over it', async () => {
    const j = job('snapshot');
    expect(j.after).toBe(j.before);
    const disk = j.result.disks[0]?.path as string;
    const { stdout } = await exec('qemu-img', ['info', '--output=json', '-f', 'qcow2', disk]);
    const info = JSON.parse(stdout) as { 'backing-filename'?: string };
    expect(info['backing-filename']).toMatch(/snapshot-src\/.*\.vmdk$/);
    expect((await fs.readdir(j.out)).sort()).toEqual(
      [path.basename(disk), path.basename(j.result.xmlPath)].sort(),
    );
  });

  it('in-place: the source itself is converted (asked for), the XML points at it', async () => {
    const j = job('in-place');
    expect(j.after).not.toBe(j.before);
    const xml = await fs.readFile(j.result.xmlPath, 'utf8');
    expect(xml).toMatch(/<source file="[^"]*in-place-src\/[^"]*\.vmdk"\/>/);
    expect(xml).toContain('<driver name="qemu" type="vmdk"/>');
    expect(await fs.readdir(j.out)).toEqual([path.basename(j.result.xmlPath)]);
  });
});

describe('dry run, bad input and failures', () => {
  it('--dry-run prints the plan and the XML and writes nothing', async () => {
    const g = guests.get('base') as DebianGuest;
    const out = await outDir('dry-run');
    const before = await sha256(g.disk);
    const r = await cli('convert', g.vmx as string, '-o', out, '--dry-run');
    expect(r.status, r.stderr).toBe(0);
    expect(await fs.readdir(out)).toEqual([]);
    expect(await sha256(g.disk)).toBe(before);
    expect(r.stdout).toContain('Plan (nothing was written):');
    expect(r.stdout).toMatch(/remove packages open-vm-tools\b/);
    expect(r.stdout).toContain('+virtio_blk');
    expect(r.stdout).toContain('-/dev/sda1');
    expect(r.stdout).toContain('+/dev/vda1');
    expect(r.stdout).toContain('<target dev="vda" bus="virtio"/>');
    // --domain-type auto (the default): kvm only where KVM really runs a guest (not here).
    const kvm = (await kvmWorks(new LocalNode())).works;
    expect(r.stdout).toContain(`<domain type="${kvm ? 'kvm' : 'qemu'}"`);
  });

  it('refuses an output directory that already holds an output, and touches nothing', async () => {
    const g = guests.get('base') as DebianGuest;
    const out = await outDir('taken');
    const mine = path.join(out, `${g.name}-sda.qcow2`);
    await fs.writeFile(mine, 'mine');
    const r = await cli('convert', g.vmx as string, '-o', out, '--domain-type', 'qemu');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`output exists already, not overwritten: ${mine}`);
    expect(await fs.readFile(mine, 'utf8')).toBe('mine');
    expect(await fs.readdir(out)).toEqual([`${g.name}-sda.qcow2`]);
  });

  it('a full output directory: a clear error with both numbers before any work, nothing left', async () => {
    const g = guests.get('base') as DebianGuest;
    const out = await outDir('full');
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'v2v-load-test', out]);
    try {
      const r = await cli('convert', g.vmx as string, '-o', out, '--domain-type', 'qemu');
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `${out}: not enough free space for the converted disks: \\d+ bytes required \\(qemu-img measure of the sources\\), \\d+ bytes available`,
        ),
      );
      expect(await fs.readdir(out)).toEqual([]);
    } finally {
      await exec('umount', [out]);
    }
  });

  it('a guest without a kernel with virtio: a clear error before anything is written', async () => {
    const out = await outDir('no-virtio-kernel');
    const src = path.join(broken, 'novirtio.qcow2');
    const before = await sha256(src);
    const r = await cli(
      'convert',
      src,
      '--name',
      'novirtio',
      '--memory',
      '1G',
      '--vcpus',
      '1',
      '-o',
      out,
      '--domain-type',
      'qemu',
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /novirtio: no kernel in the guest has virtio drivers \(6\.1\.[^)]*\): it would not find its disk on KVM/,
    );
    expect(r.stderr).toContain('--with kernel=');
    expect(await fs.readdir(out)).toEqual([]);
    expect(await sha256(src)).toBe(before);
  });

  it('a guest without a package database: a clear error before anything is written', async () => {
    const out = await outDir('no-dpkg');
    const src = path.join(broken, 'nodpkg.qcow2');
    const r = await cli(
      'convert',
      src,
      '--name',
      'nodpkg',
      '--memory',
      '1G',
      '--vcpus',
      '1',
      '-o',
      out,
      '--domain-type',
      'qemu',
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("the guest's package database is missing or empty");
    expect(await fs.readdir(out)).toEqual([]);
  });

  it('an OVA in snapshot or in-place mode: a clear error naming the archive, nothing written', async () => {
    const g = guests.get('base') as DebianGuest;
    const before = await sha256(g.ova as string);
    for (const storage of ['snapshot', 'in-place']) {
      const out = await outDir(`ova-${storage}`);
      const r = await cli('convert', g.ova as string, '-o', out, '--storage', storage);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`${g.ova} (`);
      expect(r.stderr).toContain(`--storage ${storage} needs the disk as a file of its own`);
      expect(await fs.readdir(out)).toEqual([]);
    }
    expect(await sha256(g.ova as string)).toBe(before);
  });

  it('a usage error exits 2 before anything is read', async () => {
    const g = guests.get('base') as DebianGuest;
    const r = await cli('convert', g.vmx as string, '-o', 'relative/dir');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('-o relative/dir: the output directory must be an absolute path');
  });

  it('kill -9 in the middle leaves only what a rerun removes; the rerun converts', async () => {
    const g = guests.get('base') as DebianGuest;
    const out = await outDir('killed');
    const args = [BIN, 'convert', g.vmx as string, '-o', out, '--domain-type', 'qemu', '--json'];
    const child = spawn('node', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('"stage":"apply","state":"start"')) resolve();
      });
      child.on('exit', (code) =>
        reject(new Error(`convert ended (${code}) before apply: ${seen}`)),
      );
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // What the dead run left: its run record and its working overlay.
    const left = await fs.readdir(out);
    expect(left).toContain(`.${g.name}.v2v-load-run`);
    expect(left.some((f) => f.startsWith(`.${g.name}-sda.qcow2.tmp-`))).toBe(true);
    const before = await sha256(g.disk);
    const { stdout, stderr } = await exec('node', args, { maxBuffer: 64 << 20 });
    expect(stderr).toMatch(/is gone; cleaning up after it/);
    expect(stdout).toContain('"event":"result"');
    expect((await fs.readdir(out)).sort()).toEqual([`${g.name}-sda.qcow2`, `${g.name}.xml`]);
    expect(await scratchOf([child.pid as number])).toEqual([]);
    expect(await sha256(g.disk)).toBe(before);
  });
});
