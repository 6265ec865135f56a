/**
 * An in-memory guest for plan tests: a map of absolute path → text content. Directories are
 * derived from the paths (a file `/etc/a/b` makes `/etc` and `/etc/a` exist); an empty
 * directory is a path ending in `/`. No appliance, no disk. Below it, builders of the
 * conversion's inputs (source model, inspection, context) and the pipeline's planning order.
 */
import type { GuestInspection, KernelInfo } from '../../src/convert/inspection.js';
import type { ConversionContext, GuestOs, HvSource, HvTarget } from '../../src/convert/modules.js';
import { describeAction, type GuestFiles, Plan } from '../../src/convert/plan.js';
import { type LayoutOptions, targetLayout } from '../../src/convert/target.js';
import type { SourceDisk, SourceGuest } from '../../src/metadata/model.js';

export class MemGuest implements GuestFiles {
  private readonly files = new Map<string, string>();
  private readonly dirs = new Set<string>(['/']);

  /** `files`: path → content; a path ending in `/` is an (empty) directory. */
  constructor(files: Record<string, string> = {}) {
    for (const [p, c] of Object.entries(files)) this.put(p, c);
  }

  /** Adds a file (or, for a path ending in `/`, a directory) and its parent directories. */
  put(path: string, content = ''): this {
    if (!path.startsWith('/')) throw new Error(`MemGuest: ${path} is not absolute`);
    const isDir = path.endsWith('/') && path !== '/';
    const clean = isDir ? path.slice(0, -1) : path;
    const parts = clean.split('/').slice(1);
    for (let i = 1; i < parts.length; i++) this.dirs.add(`/${parts.slice(0, i).join('/')}`);
    if (isDir) this.dirs.add(clean);
    else this.files.set(clean, content);
    return this;
  }

  async readIfExists(path: string): Promise<string | undefined> {
    return this.files.get(path);
  }

  async exists(path: string): Promise<boolean> {
    return this.files.has(path) || this.dirs.has(path);
  }

  async ls(dir: string): Promise<string[]> {
    const d = dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
    if (!this.dirs.has(d)) return [];
    const prefix = d === '/' ? '/' : `${d}/`;
    const names = new Set<string>();
    for (const p of [...this.files.keys(), ...this.dirs]) {
      if (!p.startsWith(prefix) || p === d) continue;
      const rest = p.slice(prefix.length);
      if (rest) names.add(rest.split('/')[0] as string);
    }
    return [...names].sort();
  }
}

// ---- Builders of the conversion's inputs (source model, inspection, context) for plan tests.

/** A logger that keeps nothing. */
export const silentLog = { debug() {}, info() {}, warn() {}, error() {} };

/** The instant every test conversion happens at (it is in the domain XML). */
export const NOW = new Date('2026-01-02T03:04:05.000Z');

/** A disk of a source guest; only what the test says differs from a pvscsi disk scsi0:0. */
export function sourceDisk(over: Partial<SourceDisk> = {}): SourceDisk {
  return {
    path: '/srv/vm/web/web.vmdk',
    backingChain: [],
    format: 'vmdk',
    bus: 'scsi',
    controller: 'pvscsi',
    slot: 'scsi0:0',
    controllerIndex: 0,
    unit: 0,
    readOnly: false,
    ...over,
  };
}

/** A VMware guest (vmx): one pvscsi disk, one vmxnet3 NIC on "VM Network", BIOS, 2 vCPUs. */
export function vmwareSource(over: Partial<SourceGuest> = {}): SourceGuest {
  return {
    name: 'web',
    hypervisor: 'vmware',
    firmware: 'bios',
    memoryBytes: 2 * 1024 ** 3,
    vcpus: 2,
    osHint: 'debian12-64',
    uuid: '564d1234-5678-9abc-def0-123456789abc',
    disks: [sourceDisk()],
    cdroms: [],
    nics: [
      { mac: '00:50:56:aa:bb:01', model: 'vmxnet3', network: 'VM Network', networkKind: 'network' },
    ],
    notes: [],
    origin: { kind: 'vmx', source: '/srv/vm/web/web.vmx' },
    ...over,
  };
}

/** A Xen PV guest (libvirt XML): xvda, pygrub, hvc0 console, one netfront NIC on xenbr0. */
export function xenPvSource(over: Partial<SourceGuest> = {}): SourceGuest {
  return {
    name: 'xenweb',
    hypervisor: 'xen-pv',
    firmware: 'bios',
    memoryBytes: 1024 ** 3,
    vcpus: 1,
    osHint: 'linux',
    uuid: '0f6e2c5a-1b2c-4d3e-8f90-a1b2c3d4e5f6',
    disks: [
      sourceDisk({
        path: '/srv/xen/xenweb.img',
        format: 'raw',
        bus: 'xen',
        controller: 'xen',
        slot: 'xvda',
        controllerIndex: undefined,
        unit: undefined,
      }),
    ],
    cdroms: [],
    nics: [
      { mac: '00:16:3e:12:34:56', model: 'xen-netfront', network: 'xenbr0', networkKind: 'bridge' },
    ],
    xenPv: { bootloader: '/usr/bin/pygrub', console: 'hvc0' },
    notes: [],
    origin: { kind: 'libvirtxml', source: '/srv/xen/xenweb.xml' },
    ...over,
  };
}

/** A kernel as inspection reports it (virtio drivers as modules unless `virtio` is false). */
export function kernel(version: string, virtio = true, xenOnly = false): KernelInfo {
  return {
    version,
    vmlinuz: `/boot/vmlinuz-${version}`,
    initrd: `/boot/initrd.img-${version}`,
    virtio: {
      blk: virtio,
      scsi: virtio,
      net: virtio,
      pci: virtio,
      console: virtio,
      rng: virtio,
      balloon: virtio,
    },
    xenOnly,
  };
}

/** What inspecting a Debian 12 guest finds (initramfs-tools, grub2, one kernel with virtio). */
export function debianInspection(over: Partial<GuestInspection> = {}): GuestInspection {
  return {
    root: '/dev/sda1',
    type: 'linux',
    distro: 'debian',
    family: 'debian',
    majorVersion: 12,
    minorVersion: 8,
    productName: 'Debian GNU/Linux 12 (bookworm)',
    arch: 'x86_64',
    packageFormat: 'deb',
    packageManager: 'apt',
    mountpoints: { '/': '/dev/sda1' },
    packages: [
      'bash',
      'grub-pc',
      'initramfs-tools',
      'linux-image-6.1.0-28-amd64',
      'openssh-server',
    ],
    kernels: [kernel('6.1.0-28-amd64')],
    initramfsTool: 'initramfs-tools',
    bootloader: { kind: 'grub2', config: '/boot/grub/grub.cfg' },
    ...over,
  };
}

export interface ContextOptions extends Partial<Omit<LayoutOptions, 'virtio'>> {
  virtio?: boolean;
  domainType?: 'kvm' | 'qemu';
  withFiles?: Record<string, string>;
  initramfs?: 'extend' | 'rebuild';
}

/** A conversion context with the target layout the pipeline would compute. */
export function conversionContext(
  source: SourceGuest,
  inspection: GuestInspection,
  o: ContextOptions = {},
): ConversionContext {
  const virtio = o.virtio ?? true;
  return {
    source,
    inspection,
    target: targetLayout(source, {
      outputDir: o.outputDir ?? '/srv/out',
      outputFormat: o.outputFormat ?? 'qcow2',
      virtio,
      networks: o.networks ?? [],
      name: o.name,
    }),
    options: {
      virtio,
      domainType: o.domainType ?? 'kvm',
      withFiles: o.withFiles ?? {},
      initramfs: o.initramfs,
    },
    log: silentLog,
    now: NOW,
  };
}

/** Plans a conversion the way the pipeline does: source undone, identity kept, target set up. */
export async function planConversion(
  guest: MemGuest,
  ctx: ConversionContext,
  m: { hvsource?: HvSource | undefined; guestos: GuestOs; hvtarget: HvTarget },
): Promise<Plan> {
  const plan = new Plan(guest);
  if (m.hvsource) await m.hvsource.unconfigureGuest(plan, m.guestos, ctx);
  await m.guestos.keepNetworkIdentity(plan, ctx);
  await m.hvtarget.configureGuest(plan, m.guestos, ctx);
  return plan;
}

/** A plan as `--dry-run` prints it: every action (with diffs), then the warnings. */
export function planText(plan: Plan): string {
  const parts = plan.actions.map((a) => describeAction(a));
  for (const w of plan.warnings) parts.push(`warning: ${w}`);
  return `${parts.join('\n\n')}\n`;
}

// ---- Guest file sets.

const XEN_DEFAULT_GRUB = `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="console=hvc0 earlyprintk=xen root=/dev/xvda1"
GRUB_DISABLE_LINUX_UUID=true
`;

const XEN_INITTAB = `id:2:initdefault:
si::sysinit:/etc/init.d/rcS
1:2345:respawn:/sbin/getty 38400 tty1
co:2345:respawn:/sbin/getty -L hvc0 9600 vt100
#T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100
`;

/** The files of a Debian guest made for Xen PV (pygrub, hvc0, xen aliases). */
export function xenGuestFiles(): Record<string, string> {
  return {
    '/etc/default/grub': XEN_DEFAULT_GRUB,
    '/etc/inittab': XEN_INITTAB,
    '/etc/securetty': 'console\ntty1\nhvc0\nxvc0\n',
    '/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service':
      '/lib/systemd/system/serial-getty@.service',
    '/etc/systemd/system/getty.target.wants/getty@tty1.service':
      '/lib/systemd/system/getty@.service',
    '/etc/modprobe.d/xen.conf':
      '# Xen PV drivers\nalias scsi_hostadapter xenblk\nalias eth0 xennet\nalias eth1 xen-netfront\noptions xen_blkfront max=64\n',
    '/etc/modprobe.d/blacklist.conf': 'blacklist pcspkr\n',
    '/boot/grub/grub.cfg':
      "menuentry 'Debian GNU/Linux' {\n\tlinux /boot/vmlinuz-6.1.0-28-amd64 root=/dev/xvda1 ro console=hvc0 quiet\n\tinitrd /boot/initrd.img-6.1.0-28-amd64\n}\n",
  };
}

const DEBIAN_MODULES = `# List of modules that you want to include in your initramfs.
# They will be loaded at boot time in the order below.
#
# Syntax:  module_name [args ...]
#
# You must run update-initramfs(8) to effect this change.
#
# Examples:
#
# raid1
# sd_mod
vmw_pvscsi
mptspi
ata_piix
`;

const DEBIAN_GRUB_CFG = `### BEGIN /etc/grub.d/10_linux ###
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-/dev/sda1' {
	insmod ext2
	set root='hd0,msdos1'
	echo	'Loading Linux 6.1.0-28-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-28-amd64 root=/dev/sda1 ro resume=/dev/sda5 quiet
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-6.1.0-28-amd64
}
### END /etc/grub.d/10_linux ###
`;

/**
 * A Debian 12 guest exported from VMware: two pvscsi disks (sda: /, swap; sdb: /srv and a LUKS
 * volume), fstab, grub and resume on /dev/sd*, an initramfs module list of VMware-era drivers,
 * open-vm-tools' files, a VMware apt repository, a static address on ens192, systemd's udev.
 */
export function debianVmwareGuestFiles(): Record<string, string> {
  return {
    '/etc/fstab': `# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/sda1	/	ext4	errors=remount-ro	0	1
/dev/sda5	none	swap	sw	0	0
/dev/sdb1	/srv	ext4	defaults	0	2
/dev/sr0	/media/cdrom0	udf,iso9660	user,noauto	0	0
`,
    '/etc/crypttab':
      '# <target name>\t<source device>\t<key file>\t<options>\nsrv_crypt\t/dev/sdb2\tnone\tluks\n',
    '/etc/initramfs-tools/conf.d/resume': 'RESUME=/dev/sda5\n',
    '/etc/initramfs-tools/modules': DEBIAN_MODULES,
    '/etc/initramfs-tools/initramfs.conf': 'MODULES=list\nBUSYBOX=auto\n',
    '/etc/default/grub': `GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="resume=/dev/sda5"
GRUB_DISABLE_LINUX_UUID=true
`,
    '/boot/grub/grub.cfg': DEBIAN_GRUB_CFG,
    '/boot/vmlinuz-6.1.0-28-amd64': '',
    '/boot/initrd.img-6.1.0-28-amd64': '',
    '/etc/network/interfaces': `# This file describes the network interfaces available on your system
source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
allow-hotplug ens192
iface ens192 inet static
	address 192.168.10.5/24
	gateway 192.168.10.1
`,
    '/etc/network/interfaces.d/': '',
    '/lib/systemd/systemd-udevd': '',
    '/etc/apt/sources.list':
      'deb http://deb.debian.org/debian bookworm main\ndeb https://packages.vmware.com/tools/releases/latest/ubuntu bookworm main\n',
    '/etc/vmware-tools/tools.conf': '[logging]\n',
  };
}

/** The packages of {@link debianVmwareGuestFiles}'s guest. */
export const DEBIAN_VMWARE_PACKAGES = [
  'bash',
  'grub-pc',
  'initramfs-tools',
  'linux-image-6.1.0-28-amd64',
  'open-vm-tools',
  'open-vm-tools-desktop',
  'openssh-server',
  'systemd',
];

/** The same guest with UUID= everywhere (fstab, crypttab, resume, grub). */
export function debianVmwareUuidGuestFiles(): Record<string, string> {
  const files = debianVmwareGuestFiles();
  const uuids: Record<string, string> = {
    '/dev/sda1': 'UUID=0d9c6a3e-5f1b-4b8e-9a57-0e6c1f2d3a4b',
    '/dev/sda5': 'UUID=7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
    '/dev/sdb1': 'UUID=5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9',
    '/dev/sdb2': 'UUID=1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9',
  };
  const out: Record<string, string> = {};
  for (const [p, c] of Object.entries(files)) {
    out[p] = c.replace(/\/dev\/sd[ab][125]/g, (d) => uuids[d] ?? d);
  }
  out['/etc/default/grub'] = (out['/etc/default/grub'] as string).replace(
    'GRUB_DISABLE_LINUX_UUID=true\n',
    '',
  );
  return out;
}
