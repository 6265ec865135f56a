/**
 * HVTarget KVM: the guest gets virtio drivers in its initramfs (or IDE and e1000 with
 * `--no-virtio`), its disks renamed for the target bus, its interfaces pinned to their MACs,
 * a rebuilt initramfs and bootloader; the metadata becomes a libvirt domain.
 */

import { ConversionError } from '../convert/errors.js';
import { hasVirtio } from '../convert/inspection.js';
import type { ConversionContext, GuestOs, HvTarget } from '../convert/modules.js';
import type { Plan } from '../convert/plan.js';
import { cpuTopology, type DomainDefinitionV2v } from './domain.js';
import { KvmWindowsTarget } from './kvm-windows.js';

const BY = 'hvtarget/kvm';

/** The drivers a Linux guest needs in its initramfs to boot from virtio and use virtio-net. */
export const VIRTIO_DRIVERS = [
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'virtio_net',
  'virtio_console',
];

/**
 * What a guest needs in its initramfs to find its disks on IDE (`--no-virtio`, i440fx): the
 * PIIX controller and the SCSI disk driver libata presents them through. A guest whose
 * initramfs lists its drivers (initramfs-tools MODULES=list) may have had pvscsi only.
 */
export const IDE_DRIVERS = ['ata_piix', 'ata_generic', 'sd_mod'];

/** Where a kernel package given with `--with kernel=` is put in the guest to be installed. */
export const KERNEL_PACKAGE_IN_GUEST = '/var/tmp/v2v-load-kernel-package';

/** OVMF firmware files as Debian and RHEL install them. */
const OVMF = {
  loader: '/usr/share/OVMF/OVMF_CODE.fd',
  varsTemplate: '/usr/share/OVMF/OVMF_VARS.fd',
};

export class KvmTarget implements HvTarget {
  readonly name = 'kvm';
  /** The Windows side (registry drivers, virtio-win, domain clock and Hyper-V). */
  private readonly windows = new KvmWindowsTarget();

  canConfigure(ctx: ConversionContext, installed = false): void {
    const insp = ctx.inspection;
    if (insp.type === 'windows') {
      this.windows.canConfigure(ctx);
      return;
    }
    if (insp.type !== 'linux') {
      throw new ConversionError(
        `${ctx.source.name}: ${insp.productName || insp.type} guests are not converted yet (Linux and Windows only)`,
      );
    }
    if (!insp.kernels.length) {
      throw new ConversionError(
        `${ctx.source.name}: no kernel found in the guest (/lib/modules, /boot)`,
        {
          hint: 'check the guest disks; the root file system must hold its kernels',
        },
      );
    }
    const kernelPkg = ctx.options.withFiles.kernel;
    if (kernelPkg && !installed) {
      const ext = kernelPkg.endsWith('.rpm') ? 'rpm' : kernelPkg.endsWith('.deb') ? 'deb' : '';
      if (ext !== insp.packageFormat) {
        throw new ConversionError(
          `${ctx.source.name}: --with kernel=${kernelPkg}: the guest installs ${insp.packageFormat || 'no'} packages${ext ? `, not ${ext}` : ' (the file name must end in .deb or .rpm)'}`,
          { hint: `give a kernel package of the guest's distribution (.${insp.packageFormat})` },
        );
      }
    }
    if (ctx.options.virtio && !insp.kernels.some((k) => !k.xenOnly && hasVirtio(k))) {
      if (kernelPkg && installed) {
        throw new ConversionError(
          `${ctx.source.name}: --with kernel=${kernelPkg} was installed, but still no kernel in the guest has virtio drivers (${insp.kernels
            .map((k) => k.version)
            .join(', ')})`,
          {
            hint: 'give a kernel package whose modules include virtio_blk, virtio_net and virtio_pci (or built in), or convert with --no-virtio',
          },
        );
      }
      if (kernelPkg) return;
      throw new ConversionError(
        `${ctx.source.name}: no kernel in the guest has virtio drivers (${insp.kernels
          .map((k) => k.version)
          .join(', ')}): it would not find its disk on KVM`,
        {
          hint: 'give a kernel package with virtio: --with kernel=PATH.deb|.rpm, or convert with --no-virtio (IDE and e1000)',
        },
      );
    }
    if (ctx.options.virtio && insp.initramfsTool === 'none') {
      throw new ConversionError(
        `${ctx.source.name}: no initramfs tool (initramfs-tools, dracut) in the guest`,
        {
          hint: 'install initramfs-tools or dracut in the guest, or convert with --no-virtio',
        },
      );
    }
  }

  /**
   * A kernel package given with `--with kernel=` is uploaded and installed with the guest's own
   * package tool (its scripts make the kernel's initramfs and boot entry, as on the guest), and
   * the uploaded file removed again.
   */
  async planPrerequisites(plan: Plan, _os: GuestOs, ctx: ConversionContext): Promise<void> {
    const kernelPkg = ctx.options.withFiles.kernel;
    if (ctx.inspection.type !== 'linux' || !kernelPkg) return;
    const inGuest = KERNEL_PACKAGE_IN_GUEST;
    const install = ctx.inspection.packageFormat === 'rpm' ? ['rpm', '-i'] : ['dpkg', '-i'];
    plan.upload(kernelPkg, inGuest, BY, 'kernel with virtio given by --with');
    plan.run([...install, inGuest], BY, 'install the kernel given by --with');
    plan.run(['rm', '-f', inGuest], BY, 'the uploaded package is not kept');
  }

  async configureGuest(plan: Plan, os: GuestOs, ctx: ConversionContext): Promise<void> {
    if (ctx.inspection.type === 'windows') return this.windows.configureGuest(plan, os, ctx);
    const drivers = ctx.options.virtio ? VIRTIO_DRIVERS : IDE_DRIVERS;
    await os.enableDrivers(plan, drivers, ctx);
    await os.remapDeviceNames(plan, ctx.target.deviceMap, ctx);
    await os.prepareBootable(plan, ctx, drivers);
  }

  configureMetadata(ctx: ConversionContext): DomainDefinitionV2v {
    const base = this.linuxMetadata(ctx);
    return ctx.inspection.type === 'windows' ? this.windows.configureMetadata(ctx, base) : base;
  }

  private linuxMetadata(ctx: ConversionContext): DomainDefinitionV2v {
    const s = ctx.source;
    const virtio = ctx.options.virtio;
    const kernel = ctx.inspection.kernels.filter((k) => hasVirtio(k)).at(-1);
    return {
      type: ctx.options.domainType,
      name: ctx.target.name,
      uuid: s.uuid,
      memoryKiB: Math.ceil(s.memoryBytes / 1024),
      vcpus: s.vcpus,
      topology: cpuTopology(s.vcpus, s.cpuTopology),
      arch: ctx.inspection.arch === 'i386' ? 'i686' : ctx.inspection.arch || 'x86_64',
      // IDE needs the i440fx machine; q35 has no IDE controller.
      machine: virtio ? 'q35' : 'pc',
      uefi: s.firmware === 'uefi' ? OVMF : undefined,
      clock: 'utc',
      hyperv: false,
      disks: ctx.target.disks.map((d) => ({
        path: d.output,
        format: d.outputFormat,
        dev: d.xmlDev,
        bus: d.bus,
      })),
      nics: ctx.target.nics.map((n) => ({
        kind: n.kind,
        source: n.network,
        mac: n.mac,
        model: n.model,
      })),
      video: virtio ? 'virtio' : 'vga',
      rng: virtio && !!kernel?.virtio.rng,
      balloon: virtio && !!kernel?.virtio.balloon,
      serial: { type: 'pty' },
      vnc: true,
      origin: {
        hypervisor: s.hypervisor,
        source: s.origin.source,
        converted: ctx.now.toISOString(),
      },
    };
  }
}
