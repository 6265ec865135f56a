/**
 * What Linux families share: drivers through the initramfs configuration (initramfs-tools or
 * dracut), package removal with the guest's own package tool, device renaming in every file
 * that names disks, interface pinning, and the initramfs + bootloader rebuild. A family
 * (debian.ts, rhel.ts) supplies its paths and commands.
 */

import { moduleClosure } from '../convert/initramfs.js';
import type { GuestInspection, KernelInfo } from '../convert/inspection.js';
import { hasVirtio } from '../convert/inspection.js';
import type { ConversionContext, GuestOs, InterfaceIdentity } from '../convert/modules.js';
import type { PackageTool, Plan } from '../convert/plan.js';
import { rewriteDeviceNames } from '../convert/plan.js';
import { diskLetters } from '../convert/target.js';
import { pinInterfaces } from './linux-network.js';

/** What differs between Linux families. */
export interface LinuxFamily {
  name: string;
  families: readonly string[];
  packageTool: PackageTool;
  /** The guest command that regenerates the grub2 configuration. */
  grubMkconfig: (config: string) => string[];
  /** Where the family keeps its initramfs for a kernel. */
  initrdPath: (k: KernelInfo) => string;
}

/** Files that may name disk devices and are edited in place. */
export const DEVICE_FILES = [
  '/etc/fstab',
  '/etc/crypttab',
  '/etc/default/grub',
  '/etc/initramfs-tools/conf.d/resume',
  '/etc/uswsusp.conf',
  '/etc/mdadm/mdadm.conf',
  '/etc/mdadm.conf',
  '/boot/grub/menu.lst',
  '/boot/extlinux/extlinux.conf',
  '/boot/syslinux/syslinux.cfg',
  '/boot/extlinux.conf',
  '/etc/lvm/lvm.conf',
];

/** Directories whose `*.cfg` files extend /etc/default/grub (Debian, Ubuntu cloud images). */
export const GRUB_DEFAULTS_DIR = '/etc/default/grub.d';

/**
 * LVM's devices file (RHEL 9 and later) names the physical volumes by their disk IDs, which
 * change on the new bus: without it LVM scans every disk again.
 */
export const LVM_DEVICES_FILE = '/etc/lvm/devices/system.devices';

/** Where Boot Loader Specification entries live (one file per kernel, with its options). */
export const BLS_ENTRIES = '/boot/loader/entries';

/** The suffix of the initramfs kept from before the conversion. */
export const OLD_INITRD_SUFFIX = '.pre-v2v-load';

export class LinuxGuestOs implements GuestOs {
  readonly name: string;
  private readonly by: string;

  constructor(private readonly family: LinuxFamily) {
    this.name = family.name;
    this.by = `guestos/${family.name}`;
  }

  applies(inspection: GuestInspection): boolean {
    return inspection.type === 'linux' && this.family.families.includes(inspection.family);
  }

  async enableDrivers(
    plan: Plan,
    drivers: readonly string[],
    ctx: ConversionContext,
  ): Promise<void> {
    if (!drivers.length) return;
    const tool = ctx.inspection.initramfsTool;
    if (tool === 'initramfs-tools') {
      const file = '/etc/initramfs-tools/modules';
      const text = (await plan.read(file)) ?? '';
      const have = new Set(
        text
          .split('\n')
          .map((l) => l.replace(/#.*/, '').trim().split(/\s+/)[0])
          .filter(Boolean),
      );
      const add = drivers.filter((d) => !have.has(d));
      if (!add.length) return;
      const body = text.endsWith('\n') || text === '' ? text : `${text}\n`;
      await plan.write(
        file,
        `${body}# Added by v2v-load for KVM:\n${add.join('\n')}\n`,
        this.by,
        `load ${add.join(', ')} from the initramfs`,
      );
    } else if (tool === 'dracut') {
      await plan.write(
        '/etc/dracut.conf.d/90-v2v-load-virtio.conf',
        `# Written by v2v-load: drivers KVM's disks and NICs need at boot.\nadd_drivers+=" ${drivers.join(' ')} "\n`,
        this.by,
        `load ${drivers.join(', ')} from the initramfs`,
      );
    } else {
      plan.warn(
        `no initramfs tool found in the guest: ${drivers.join(', ')} must be built into the kernel`,
      );
    }
  }

  async removeApplications(
    plan: Plan,
    names: readonly string[],
    ctx: ConversionContext,
  ): Promise<void> {
    const installed = new Set(ctx.inspection.packages);
    const present = names.filter((n) => installed.has(n));
    plan.removePackages(
      this.family.packageTool,
      present,
      this.by,
      'remove the source hypervisor tools',
    );
  }

  async remapDeviceNames(
    plan: Plan,
    map: Readonly<Record<string, string>>,
    ctx: ConversionContext,
  ): Promise<void> {
    await this.warnDiskIds(plan);
    if (!Object.keys(map).length) return;
    const files = [...DEVICE_FILES];
    for (const n of await plan.ls(GRUB_DEFAULTS_DIR)) {
      if (n.endsWith('.cfg')) files.push(`${GRUB_DEFAULTS_DIR}/${n}`);
    }
    if (ctx.inspection.bootloader.config) files.push(ctx.inspection.bootloader.config);
    // Boot Loader Specification entries (RHEL 8+, Fedora) carry the kernel command line.
    for (const n of await plan.ls(BLS_ENTRIES)) {
      if (n.endsWith('.conf')) files.push(`${BLS_ENTRIES}/${n}`);
    }
    for (const f of [...new Set(files)]) {
      await plan.edit(
        f,
        (t) => rewriteDeviceNames(t, map),
        this.by,
        `device names for the target bus (${Object.entries(map)
          .map(([a, b]) => `${a}→${b}`)
          .join(', ')})`,
      );
    }
  }

  /**
   * Plans extending the kernel's initramfs image with the drivers when that is known to be
   * right (src/convert/initramfs.ts); false when the image must be rebuilt instead.
   */
  private async planExtend(
    plan: Plan,
    ctx: ConversionContext,
    k: KernelInfo,
    initrd: string,
    drivers: readonly string[],
  ): Promise<boolean> {
    const tool = ctx.inspection.initramfsTool;
    if (ctx.options.initramfs === 'rebuild' || !drivers.length) return false;
    if (tool !== 'initramfs-tools' && tool !== 'dracut') return false;
    const dir = `/lib/modules/${k.version}`;
    const dep = await plan.read(`${dir}/modules.dep`);
    if (dep === undefined) return false;
    const closure = moduleClosure(dep, await plan.read(`${dir}/modules.builtin`), drivers);
    if (closure.missing.length || closure.compressed) return false;
    if (!closure.files.length) {
      plan.note(`${k.version}: ${drivers.join(', ')} are built into the kernel`);
      return true;
    }
    plan.extendInitramfs(
      { initrd, kernel: k.version, files: closure.files, modules: [...drivers] },
      this.by,
      `the drivers for the target in the initramfs of ${k.version} (no rebuild)`,
    );
    return true;
  }

  /** Disk names by ID or by path change with the bus: they are named to the user. */
  private async warnDiskIds(plan: Plan): Promise<void> {
    for (const f of ['/etc/fstab', '/etc/crypttab']) {
      const text = await plan.read(f);
      const names = new Set(text?.match(/\/dev\/disk\/by-(?:id|path)\/[^\s,"']+/g) ?? []);
      if (names.size) {
        plan.warn(
          `${f} names ${[...names].join(', ')}: disk IDs and paths change on the target bus; use UUID= or LABEL=`,
        );
      }
    }
  }

  async keepNetworkIdentity(plan: Plan, ctx: ConversionContext): Promise<InterfaceIdentity[]> {
    const macs = ctx.target.nics.map((n) => n.mac).filter((m): m is string => !!m);
    return pinInterfaces(plan, macs, this.by);
  }

  async prepareBootable(
    plan: Plan,
    ctx: ConversionContext,
    drivers: readonly string[] = [],
  ): Promise<void> {
    const insp = ctx.inspection;
    const kernels = insp.kernels.filter((k) => !k.xenOnly && (!ctx.options.virtio || hasVirtio(k)));
    // Before the rebuild: dracut copies the devices file into the initramfs.
    await plan.remove(
      LVM_DEVICES_FILE,
      this.by,
      'LVM devices file names the source disks by ID; without it LVM finds its volumes on any disk',
    );
    for (const k of kernels) {
      const initrd = k.initrd ?? this.family.initrdPath(k);
      if (k.initrd) {
        plan.copy(
          k.initrd,
          `${k.initrd}${OLD_INITRD_SUFFIX}`,
          this.by,
          'keep the initramfs from before the conversion',
        );
      }
      if (k.initrd && (await this.planExtend(plan, ctx, k, k.initrd, drivers))) {
        // extended in place: nothing to rebuild
      } else if (insp.initramfsTool === 'initramfs-tools') {
        // -u only updates an image that exists (a kernel package's scripts may have made none).
        plan.run(
          ['update-initramfs', k.initrd ? '-u' : '-c', '-k', k.version],
          this.by,
          `${k.initrd ? 'rebuild' : 'create'} the initramfs of ${k.version}`,
        );
      } else if (insp.initramfsTool === 'dracut') {
        // The guest's own hostonly choice stands (a generic image is slow to build under TCG);
        // the drivers come from add_drivers, and the appliance's root device must not be
        // written into the image's command line.
        plan.run(
          ['dracut', '--force', '--no-hostonly-cmdline', initrd, k.version],
          this.by,
          `rebuild the initramfs of ${k.version}`,
        );
      }
    }
    const bl = insp.bootloader;
    // The appliance names the disks sda, sdb... in the order they were added: a configuration
    // regenerated there names them so, and must be rewritten to the names on the target.
    const applianceMap: Record<string, string> = {};
    ctx.target.disks.forEach((d, i) => {
      const app = `sd${diskLetters(i)}`;
      if (app !== d.guestDev) applianceMap[app] = d.guestDev;
    });
    const expect = ctx.target.disks.map((d) => d.guestDev);
    // grub.cfg names the same kernels and initramfs files as before (they were rebuilt under
    // their own names) and had its device names edited with the rest, so it is regenerated
    // only when the kernels changed (a kernel installed with --with) and it lacks one that
    // boots (the package's scripts usually regenerated it already, in the appliance): under
    // TCG grub-mkconfig costs tens of seconds. Either way every root= and resume= is checked.
    const kernelsChanged = !!ctx.options.withFiles.kernel;
    const newest = insp.kernels.filter((k) => !k.xenOnly).at(-1);
    if (ctx.options.virtio && newest && !hasVirtio(newest)) {
      plan.warn(
        `${newest.version} is the newest kernel and has no virtio drivers: the bootloader's default entry boots it, and it will not find its disk`,
      );
    }
    if (bl.kind === 'grub2' && bl.config && kernelsChanged) {
      const words = ((await plan.read(bl.config)) ?? '').split(/\s+/);
      if (!kernels.every((k) => words.some((w) => w.endsWith(`/vmlinuz-${k.version}`)))) {
        plan.run(this.family.grubMkconfig(bl.config), this.by, 'regenerate the grub configuration');
      }
      // Generated in the appliance (by us or the package's scripts): appliance disk names.
      plan.rewriteDevices(
        bl.config,
        applianceMap,
        expect,
        this.by,
        'root= and resume= as the guest will see its disks',
      );
    } else if (bl.config) {
      plan.rewriteDevices(bl.config, {}, expect, this.by, 'root= and resume= name target disks');
    } else if (bl.kind === 'unknown') {
      plan.warn('no bootloader configuration found in the guest: it may not boot');
    }
  }
}
