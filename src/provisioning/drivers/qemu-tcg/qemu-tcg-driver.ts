/**
 * Plain QEMU (TCG emulation): domains of type 'qemu', for hosts where KVM is absent or does not
 * work (the KVM driver, asked first, says why). Same disks as KVM.
 */
import type { DomainDefinitionV2v } from '../../../hvtarget/domain.js';
import type {
  DriverContext,
  DriverFit,
  HypervisorDriver,
  PreDefineSteps,
  PreparedDisks,
} from '../driver.js';
import { findQemuBinary, qemuPreDefine } from '../qemu-family.js';

export class QemuTcgDriver implements HypervisorDriver {
  readonly name = 'QEMU-TCG';
  readonly domainType = 'qemu' as const;
  readonly diskDriverName = 'qemu';
  readonly diskFormat = 'qcow2' as const;
  readonly diskFileExtension = 'qcow2' as const;

  async fits(ctx: DriverContext): Promise<DriverFit> {
    if (ctx.res.vmhost.domainType === 'kvm')
      return { fits: false, reason: 'vmhost.domainType is kvm' };
    if (!(await findQemuBinary(ctx)))
      return { fits: false, reason: 'no QEMU emulator on the node' };
    // Asked for by name: libvirt's QEMU driver offers 'qemu' wherever the emulator is (the
    // capabilities, slow to read, are read only when the driver decides).
    if (ctx.res.vmhost.domainType === 'qemu') return { fits: true };
    if (!(await ctx.domainTypes()).includes('qemu')) {
      return { fits: false, reason: "libvirt offers no 'qemu' domain type" };
    }
    return { fits: true };
  }

  extendDomain(def: DomainDefinitionV2v): void {
    def.type = 'qemu';
    // TCG has no host CPU to pass through: keep the emulated default model.
  }

  preDefine(ctx: DriverContext, steps: PreDefineSteps): Promise<PreparedDisks> {
    return qemuPreDefine(ctx, steps);
  }
}
