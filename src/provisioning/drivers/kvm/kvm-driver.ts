/**
 * KVM (VCL's libvirt/KVM.pm): domains of type 'kvm'. Fits a node with a QEMU emulator,
 * /dev/kvm, 'kvm' among libvirt's domain types, and a KVM that really runs a guest (the boot probe of
 * src/hvtarget/kvm-probe.ts).
 */
import type { DomainDefinitionV2v } from '../../../hvtarget/domain.js';
import { newestKernel, probeKvmBoot } from '../../../hvtarget/kvm-probe.js';
import type {
  DriverContext,
  DriverFit,
  HypervisorDriver,
  PreDefineSteps,
  PreparedDisks,
} from '../driver.js';
import { findQemuBinary, qemuPreDefine } from '../qemu-family.js';

export { KVM_PROBE_CACHE, probeKvmBoot } from '../../../hvtarget/kvm-probe.js';

export class KvmDriver implements HypervisorDriver {
  readonly name = 'KVM';
  readonly domainType = 'kvm' as const;
  readonly diskDriverName = 'qemu';
  readonly diskFormat = 'qcow2' as const;
  readonly diskFileExtension = 'qcow2' as const;

  async fits(ctx: DriverContext): Promise<DriverFit> {
    const asked = ctx.res.vmhost.domainType;
    if (asked === 'qemu') return { fits: false, reason: 'vmhost.domainType is qemu' };
    const qemu = await findQemuBinary(ctx);
    if (!qemu) return { fits: false, reason: 'no QEMU emulator on the node' };
    if (!(await ctx.node.stat('/dev/kvm'))) return { fits: false, reason: 'no /dev/kvm' };
    if (!(await ctx.domainTypes()).includes('kvm')) {
      return { fits: false, reason: "libvirt offers no 'kvm' domain type" };
    }
    if (asked === 'kvm') return { fits: true };
    const kernel = await newestKernel(ctx.node);
    if (!kernel) return { fits: false, reason: 'no /boot/vmlinuz-* to probe KVM with' };
    const v = await probeKvmBoot(ctx.node, qemu, kernel);
    return v.works ? { fits: true } : { fits: false, reason: v.detail };
  }

  extendDomain(def: DomainDefinitionV2v): void {
    def.type = 'kvm';
  }

  preDefine(ctx: DriverContext, steps: PreDefineSteps): Promise<PreparedDisks> {
    return qemuPreDefine(ctx, steps);
  }
}
