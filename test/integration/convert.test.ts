/**
 * `v2v-load convert` end to end on the realistic Debian fixtures (test/harness/debian-guest.ts):
 * each variant converts, then boots under TCG on virtio hardware to its markers, with VMware
 * Tools gone, / on vd*, and its interface name (and static address) kept; the source is never
 * written. One conversion per variant; the other storage modes and the failures use the
 * cheapest one.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootDisk, STUCK_PATTERNS } from '../harness/boot.js';
import { cli } from '../harness/cli.js';
import { type DebianGuest, debianGuest } from '../harness/debian-guest.js';

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of (await fs.open(file)).createReadStream()) h.update(chunk);
  return h.digest('hex');
}

let work: string;
beforeAll(async () => {
  work = await fs.mkdtemp(path.join('/var/tmp', 'v2v-load-convert-it-'));
  await fs.chmod(work, 0o755);
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function outDir(name: string): Promise<string> {
  const d = path.join(work, name);
  await fs.mkdir(d, { mode: 0o755 });
  return d;
}

interface Converted {
  result: Record<string, unknown> & {
    disks: { path: string; format: string }[];
    xmlPath: string;
    interfaces: { name: string; mac: string; addresses: string[] }[];
    stages: Record<string, number>;
    plan: string[];
  };
  events: Record<string, unknown>[];
  stderr: string;
}

async function convert(args: string[]): Promise<Converted> {
  const r = await cli('convert', ...args, '--domain-type', 'qemu', '--json');
  if (r.status !== 0) throw new Error(`convert failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const result = lines.find((l) => l.event === 'result') as Converted['result'];
  return { result, events: lines, stderr: r.stderr };
}

/** Converts a VMware variant from its .vmx and checks it boots on virtio with all kept. */
async function convertAndBoot(g: DebianGuest, extra: string[] = []) {
  const src = g.vmx ?? g.libvirtXml;
  if (!src) throw new Error('fixture without metadata');
  const before = await sha256(g.disk);
  const out = await outDir(g.variant);
  const c = await convert([src, '-o', out, ...extra]);
  expect(await sha256(g.disk)).toBe(before);
  const disk = c.result.disks[0];
  if (!disk) throw new Error('no output disk');
  expect(disk.path).toBe(path.join(out, `${g.name}-sda.qcow2`));
  const boot = await bootDisk({
    image: disk.path,
    format: 'qcow2',
    hardware: 'virtio',
    mac: g.mac,
    stopOn: STUCK_PATTERNS,
  });
  if (!boot.reached) throw new Error(`converted ${g.variant} did not boot:\n${boot.log.slice(-3000)}`);
  return { c, boot, out };
}

describe('convert the VMware Debian guest (base)', () => {
  let g: DebianGuest;
  beforeAll(async () => {
    g = await debianGuest('base');
  }, 1_800_000);

  it('writes nothing with --dry-run and prints the plan', async () => {
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
    expect(r.stdout).toContain("<target dev=\"vda\" bus=\"virtio\"/>");
  });

  it('converts, and the result boots on virtio with VMware Tools gone, / on vda1, ens192 kept', async () => {
    const { c, boot } = await convertAndBoot(g);
    expect(boot.markers.vmtools).toBe('absent');
    expect(boot.markers.root).toBe('/dev/vda1');
    expect(boot.markers.cmdline).toMatch(/root=\/dev\/vda1/);
    expect(boot.markers.ifaces.map((i) => [i.name, i.mac])).toEqual([['ens192', g.mac]]);
    expect(c.result.interfaces.map((i) => [i.name, i.mac])).toEqual([['ens192', g.mac]]);
    const xml = await fs.readFile(c.result.xmlPath, 'utf8');
    expect(xml).toContain(`<mac address="${g.mac}"/>`);
    expect(xml).toContain('<domain type="qemu">');
    // Stage times are reported.
    for (const s of ['read-metadata', 'open-guest', 'inspect', 'plan', 'apply', 'storage-finish']) {
      expect(c.result.stages[s], s).toBeGreaterThanOrEqual(0);
    }
  });
});

describe.each(['uuid', 'static-ip', 'dracut'] as const)('convert the %s variant', (variant) => {
  let g: DebianGuest;
  beforeAll(async () => {
    g = await debianGuest(variant);
  }, 1_800_000);

  it('boots on virtio with everything kept', async () => {
    const { boot } = await convertAndBoot(g);
    expect(boot.markers.vmtools).toBe('absent');
    if (variant === 'uuid') expect(boot.markers.cmdline).toMatch(/root=UUID=/);
    else expect(boot.markers.root).toBe('/dev/vda1');
    const iface = boot.markers.ifaces.find((i) => i.name === 'ens192');
    expect(iface?.mac).toBe(g.mac);
    if (variant === 'static-ip') expect(iface?.ipv4).toContain('10.0.2.15/24');
  });
});

describe('convert the Xen PV variant (libvirt XML)', () => {
  let g: DebianGuest;
  beforeAll(async () => {
    g = await debianGuest('xen-pv');
  }, 1_800_000);

  it('boots on virtio with the console on ttyS0 and / on vda1', async () => {
    const { boot } = await convertAndBoot(g, ['-i', 'libvirtxml']);
    expect(boot.markers.root).toBe('/dev/vda1');
    expect(boot.markers.cmdline).toMatch(/console=ttyS0/);
    expect(boot.markers.cmdline).not.toMatch(/hvc0/);
  });
});

describe('storage modes and --no-virtio on the base guest', () => {
  let g: DebianGuest;
  beforeAll(async () => {
    g = await debianGuest('base');
  }, 1_800_000);

  it('--no-virtio boots on IDE', async () => {
    const before = await sha256(g.disk);
    const out = await outDir('no-virtio');
    const c = await convert([g.vmx as string, '-o', out, '--no-virtio']);
    expect(await sha256(g.disk)).toBe(before);
    const xml = await fs.readFile(c.result.xmlPath, 'utf8');
    expect(xml).toContain('<target dev="hda" bus="ide"/>');
    expect(xml).toContain('<model type="e1000"/>');
    const boot = await bootDisk({
      image: c.result.disks[0]?.path as string,
      format: 'qcow2',
      hardware: 'ide',
      mac: g.mac,
      stopOn: STUCK_PATTERNS,
    });
    expect(boot.reached, boot.log.slice(-2000)).toBe(true);
    expect(boot.markers.root).toBe('/dev/sda1');
    expect(boot.markers.vmtools).toBe('absent');
  });

  it('--storage snapshot keeps the source byte-identical; the output is an overlay over it', async () => {
    // A private copy of the source: snapshot outputs point at their source for good.
    const srcDir = await outDir('snap-src');
    await fs.copyFile(g.vmdk as string, path.join(srcDir, path.basename(g.vmdk as string)));
    await fs.copyFile(g.vmx as string, path.join(srcDir, path.basename(g.vmx as string)));
    const src = path.join(srcDir, path.basename(g.vmdk as string));
    const before = await sha256(src);
    const out = await outDir('snapshot');
    const c = await convert([
      path.join(srcDir, path.basename(g.vmx as string)),
      '-o',
      out,
      '--storage',
      'snapshot',
      '--dry-run=false',
    ]);
    expect(await sha256(src)).toBe(before);
    const { execFile } = await import('node:child_process');
    const info = await new Promise<string>((res, rej) =>
      execFile(
        'qemu-img',
        ['info', '--output=json', '-f', 'qcow2', c.result.disks[0]?.path as string],
        (e, so) => (e ? rej(e) : res(so)),
      ),
    );
    expect(JSON.parse(info)['backing-filename']).toBe(src);
    expect(await fs.readdir(out)).toEqual([
      `${g.name}-sda.qcow2`,
      `${g.name}.xml`,
    ]);
  });

  it('refuses an output directory that already holds the outputs, and changes nothing', async () => {
    const out = await outDir('taken');
    await fs.writeFile(path.join(out, `${g.name}-sda.qcow2`), 'mine');
    const r = await cli('convert', g.vmx as string, '-o', out, '--domain-type', 'qemu');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`output exists already, not overwritten: ${path.join(out, `${g.name}-sda.qcow2`)}`);
    expect(await fs.readFile(path.join(out, `${g.name}-sda.qcow2`), 'utf8')).toBe('mine');
    expect(await fs.readdir(out)).toEqual([`${g.name}-sda.qcow2`]);
  });

  it('a usage error exits 2 before anything is read', async () => {
    const r = await cli('convert', g.vmx as string, '-o', 'relative/dir');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('-o relative/dir: the output directory must be an absolute path');
  });
});

void os;
