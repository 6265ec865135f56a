/**
 * HVSource VMware, Windows guests: VMware's drivers and services are disabled in the active
 * control set (Start = 4, so Windows never loads them on KVM) and the report says which were
 * found and changed. With `--remove-vmware-tools-firstboot`, VMware Tools itself is
 * uninstalled at the first logon on KVM (a RunOnce entry; off by default: the uninstaller
 * runs inside the guest, where no conversion can check it).
 */
import type { GuestInspection } from '../convert/inspection.js';
import type { ConversionContext, GuestOs, HvSource } from '../convert/modules.js';
import type { Plan } from '../convert/plan.js';
import { asWindows, type ServiceReport } from '../guestos/windows.js';
import type { SourceGuest } from '../metadata/model.js';

const BY = 'hvsource/vmware-windows';

/** VMware's Windows services and drivers, older and newer Tools. */
export const VMWARE_SERVICES = [
  'VClone',
  'vmci',
  'vmmouse',
  'vmscsi',
  'VMTools',
  'vmx_svga',
  'vmxnet',
  'vmxnet3ndis6',
  'vm3dmp',
  'vmhgfs',
  'vmmemctl',
  'vmrawdsk',
  'vmusbmouse',
  'vmvss',
  'vsock',
  'VGAuthService',
];

/** The DisplayName of VMware Tools in the Uninstall keys. */
export const VMWARE_TOOLS = 'VMware Tools';

/** The report line of the services found and changed. */
export function serviceReportNote(controlSet: string, r: ServiceReport): string {
  const parts = [
    `VMware services in ${controlSet}: ${
      r.changed.length
        ? `disabled (Start 4) ${r.changed.map((c) => `${c.name} (was ${c.before ?? 'unset'})`).join(', ')}`
        : 'none changed'
    }`,
  ];
  if (r.unchanged.length) parts.push(`already disabled ${r.unchanged.join(', ')}`);
  parts.push(
    r.changed.length + r.unchanged.length ? `not present ${r.absent.length}` : 'none present',
  );
  return parts.join('; ');
}

export class VmwareWindowsSource implements HvSource {
  readonly name = 'vmware-windows';

  applies(source: SourceGuest, inspection: GuestInspection): boolean {
    return source.hypervisor === 'vmware' && inspection.type === 'windows';
  }

  async unconfigureGuest(plan: Plan, os: GuestOs, ctx: ConversionContext): Promise<void> {
    const win = asWindows(os, BY);
    const { controlSet } = await win.registry(plan, ctx);
    const report = await win.disableServices(
      plan,
      VMWARE_SERVICES,
      ctx,
      BY,
      'disable the VMware service',
    );
    plan.note(serviceReportNote(controlSet, report));
    if (ctx.options.removeVmwareToolsFirstboot) {
      await win.removeApplications(plan, [VMWARE_TOOLS], ctx);
    }
  }
}
