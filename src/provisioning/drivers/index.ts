/**
 * The hypervisor drivers, in the order they are asked whether they serve a node: KVM first,
 * then plain QEMU (TCG) for hosts without a working KVM. A new driver is a folder here and one
 * line in this list; the provisioner does not change.
 */
import type { HypervisorDriver } from './driver.js';
import { KvmDriver } from './kvm/kvm-driver.js';
import { QemuTcgDriver } from './qemu-tcg/qemu-tcg-driver.js';

export const HYPERVISOR_DRIVERS: readonly (new () => HypervisorDriver)[] = [
  KvmDriver,
  QemuTcgDriver,
];
