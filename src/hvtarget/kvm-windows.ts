/**
 * HVTarget KVM, the Windows side: virtio when `--virtio-win` has drivers for the guest's
 * version and architecture (viostor for the disks, netkvm for the NICs, vioscsi copied along),
 * otherwise IDE and e1000 with a warning, never a guest that cannot find its disk. The domain
 * gets a local-time clock (Windows keeps the RTC in local time) and, on KVM and Windows 6.0 or
 * later, the Hyper-V enlightenments.
 */
import { ConversionError } from '../convert/errors.js';
import type { ConversionContext, GuestOs } from '../convert/modules.js';
import type { Plan } from '../convert/plan.js';
import { diskLetters } from '../convert/target.js';
import { asWindows, WindowsGuestOs } from '../guestos/windows.js';
import { WINDOWS_IDE_DRIVERS } from '../guestos/windows-ide.js';
import type { DomainDefinitionV2v } from './domain.js';
import { archDir, driverFiles, listVirtioWin, pickDrivers } from './virtio-win.js';

const BY = 'hvtarget/kvm-windows';

/** The buses the converted Windows guest gets. */
export interface WindowsDevices {
  disk: 'virtio' | 'ide';
  net: 'virtio' | 'e1000';
}

function describeWindows(ctx: ConversionContext): string {
  const i = ctx.inspection;
  return `${i.productName} (${i.majorVersion}.${i.minorVersion} ${i.arch})`;
}

export class KvmWindowsTarget {
  /** What configureGuest chose, for configureMetadata of the same conversion. */
  private readonly chosen = new WeakMap<ConversionContext, WindowsDevices>();

  canConfigure(ctx: ConversionContext): void {
    const i = ctx.inspection;
    if (!i.windows) {
      throw new ConversionError(
        `${ctx.source.name}: inspection found Windows but not its system root and registry hives`,
        { hint: 'check the guest disk: Windows/System32/config/SYSTEM and SOFTWARE must be there' },
      );
    }
    if (i.majorVersion < 5) {
      throw new ConversionError(
        `${ctx.source.name}: ${describeWindows(ctx)} is older than Windows 2000 and is not converted`,
      );
    }
    if (!archDir(i.arch)) {
      throw new ConversionError(
        `${ctx.source.name}: ${describeWindows(ctx)}: only x86 and x86_64 Windows guests are converted`,
      );
    }
  }

  async configureGuest(plan: Plan, os: GuestOs, ctx: ConversionContext): Promise<void> {
    const win = asWindows(os, BY);
    const devices = await this.installDrivers(plan, win, ctx);
    if (devices.disk === 'ide') {
      if (ctx.target.disks.length > 4) {
        throw new ConversionError(
          `${ctx.source.name}: the guest has ${ctx.target.disks.length} disks but IDE takes at most 4`,
          { hint: `give --virtio-win with a viostor driver for ${describeWindows(ctx)}` },
        );
      }
      await win.enableDrivers(plan, WINDOWS_IDE_DRIVERS, ctx);
    }
    this.chosen.set(ctx, devices);
  }

  /** Copies the virtio drivers there are for this guest; says which buses it can use. */
  private async installDrivers(
    plan: Plan,
    win: WindowsGuestOs,
    ctx: ConversionContext,
  ): Promise<WindowsDevices> {
    const ide: WindowsDevices = { disk: 'ide', net: 'e1000' };
    if (!ctx.options.virtio) return ide;
    const source = ctx.options.virtioWin;
    if (!source) {
      plan.warn(
        `no --virtio-win: ${describeWindows(ctx)} gets IDE disks and an e1000 NIC (slower); give --virtio-win DIR_OR_ISO (the virtio-win drivers) for virtio`,
      );
      return ide;
    }
    if (!ctx.io) throw new ConversionError(`${BY}: --virtio-win needs the node (no I/O given)`);
    const tree = await listVirtioWin(ctx.io, source);
    const i = ctx.inspection;
    const { picks, looked } = pickDrivers(tree, { ...i, variant: i.windows?.productVariant ?? '' });
    const has = (n: string) => picks.some((p) => p.name === n);
    const devices: WindowsDevices = {
      disk: has('viostor') ? 'virtio' : 'ide',
      net: has('netkvm') ? 'virtio' : 'e1000',
    };
    const where = (n: string) => looked.filter((l) => l.startsWith(`${n}/`)).join(', ') || 'none';
    if (devices.disk === 'ide') {
      plan.warn(
        `${source} has no viostor driver for ${describeWindows(ctx)} (looked in ${where('viostor')}): the guest gets IDE disks`,
      );
    }
    if (devices.net === 'e1000') {
      plan.warn(
        `${source} has no netkvm driver for ${describeWindows(ctx)} (looked in ${where('netkvm')}): the guest gets e1000 NICs`,
      );
    }
    await win.installVirtioDrivers(plan, await driverFiles(ctx.io, tree, picks), ctx);
    return devices;
  }

  /** The KVM domain adjusted for Windows: buses as chosen, local-time clock, Hyper-V. */
  configureMetadata(ctx: ConversionContext, base: DomainDefinitionV2v): DomainDefinitionV2v {
    const d = this.chosen.get(ctx) ?? { disk: 'ide', net: 'e1000' };
    const i = ctx.inspection;
    return {
      ...base,
      // IDE needs i440fx; Windows before Vista knows no q35 (ICH9) chipset.
      machine: d.disk === 'ide' || i.majorVersion < 6 ? 'pc' : 'q35',
      clock: 'localtime',
      hyperv: base.type === 'kvm' && i.majorVersion >= 6,
      disks: base.disks.map((disk, n) => ({
        ...disk,
        bus: d.disk,
        dev: d.disk === 'virtio' ? `vd${diskLetters(n)}` : `hd${diskLetters(n)}`,
      })),
      nics: base.nics.map((nic) => ({ ...nic, model: d.net })),
      video: 'vga',
      rng: false,
      balloon: false,
    };
  }
}
