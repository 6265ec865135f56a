/**
 * HVSource Xen (PV and FV), Linux guests: the Xen console (hvc0, xvc0) becomes the serial
 * console ttyS0 (kernel command line, inittab, getty units, securetty), Xen block and network
 * driver aliases go, and a guest that booted through pygrub or a kernel in the host gets its
 * own bootloader back in its boot sector. xvd* → vd* is the device map's work (GuestOs).
 */
import type { GuestInspection } from '../convert/inspection.js';
import type { ConversionContext, GuestOs, HvSource } from '../convert/modules.js';
import type { Plan } from '../convert/plan.js';
import type { SourceGuest } from '../metadata/model.js';

/** grub-install on the disk that holds /boot/grub, as the appliance names it. */
export const GRUB_INSTALL_BOOT_DISK =
  'exec grub-install --target=i386-pc "$(grub-probe --target=disk /boot/grub)"';

const BY = 'hvsource/xen-linux';

/** `console=hvc0` / `xvc0` → `ttyS0` (any text naming the Xen console as a tty). */
export function xenConsoleToSerial(text: string): string {
  return text.replace(/\b(console=)(hvc|xvc)0\b/g, '$1ttyS0').replace(/\b(hvc|xvc)0\b/g, 'ttyS0');
}

/** modprobe lines that alias Xen's PV drivers (xenblk, xennet, xen-vbd, xen-netfront). */
export function dropXenAliases(text: string): string {
  return text
    .split('\n')
    .filter(
      (l) =>
        !/^\s*alias\s+\S+\s+(xenblk|xennet|xen-vbd|xen-netfront|xen_blkfront|xen_netfront)\s*$/.test(
          l,
        ),
    )
    .join('\n');
}

export class XenLinuxSource implements HvSource {
  readonly name = 'xen-linux';

  applies(source: SourceGuest, inspection: GuestInspection): boolean {
    return (
      (source.hypervisor === 'xen-pv' || source.hypervisor === 'xen-fv') &&
      inspection.type === 'linux'
    );
  }

  async unconfigureGuest(plan: Plan, _os: GuestOs, ctx: ConversionContext): Promise<void> {
    const usable = ctx.inspection.kernels.filter((k) => !k.xenOnly);
    if (ctx.inspection.kernels.some((k) => k.xenOnly) && usable.length) {
      plan.warn(
        `Xen-only kernels (${ctx.inspection.kernels
          .filter((k) => k.xenOnly)
          .map((k) => k.version)
          .join(
            ', ',
          )}) stay installed but are not rebuilt; the guest boots ${usable.at(-1)?.version}`,
      );
    }
    const grubDefaults = (await plan.ls('/etc/default/grub.d'))
      .filter((n) => n.endsWith('.cfg'))
      .map((n) => `/etc/default/grub.d/${n}`);
    for (const f of ['/etc/default/grub', ...grubDefaults, '/etc/inittab', '/etc/securetty']) {
      await plan.edit(f, xenConsoleToSerial, BY, 'Xen console → serial console ttyS0');
    }
    const bl = ctx.inspection.bootloader.config;
    if (bl) await plan.edit(bl, xenConsoleToSerial, BY, 'Xen console → serial console ttyS0');
    for (const dir of ['/etc/systemd/system/getty.target.wants']) {
      for (const n of await plan.ls(dir)) {
        const m = /^(serial-getty|getty)@(hvc|xvc)0\.service$/.exec(n);
        if (!m) continue;
        await plan.remove(`${dir}/${n}`, BY, 'getty on the Xen console');
      }
    }
    for (const n of await plan.ls('/etc/modprobe.d')) {
      await plan.edit(`/etc/modprobe.d/${n}`, dropXenAliases, BY, 'Xen PV driver aliases');
    }
    await plan.edit('/etc/modprobe.conf', dropXenAliases, BY, 'Xen PV driver aliases');
    if (ctx.source.hypervisor === 'xen-pv' && ctx.source.xenPv) {
      // pygrub (or a kernel in the host) booted it: the boot sector may hold no bootloader.
      if (ctx.inspection.bootloader.kind === 'grub2') {
        // Inside the appliance the guest's disk is not /dev/sda (libguestfs names it so only in
        // its API; its own root disk comes first): grub-probe names the disk holding /boot/grub.
        // A constant script, no input in it.
        plan.run(
          ['sh', '-c', GRUB_INSTALL_BOOT_DISK],
          BY,
          'install grub in the boot sector of the disk holding /boot/grub (the guest booted through pygrub on Xen)',
        );
      } else {
        plan.warn(
          `the guest booted through ${ctx.source.xenPv.bootloader ?? 'a kernel in the Xen host'} and has no grub2 (bootloader: ${ctx.inspection.bootloader.kind}) to install in its boot sector: it may not boot on KVM`,
        );
      }
    }
  }
}
