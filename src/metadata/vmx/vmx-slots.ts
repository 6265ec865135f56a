/**
 * Device slots of a .vmx (`scsi0:1`, `sata0:0`, `nvme0:0`, `ide1:0`): which ones the file names,
 * in bus, controller and unit order, and the entry that locates each in the file.
 */
import type { VmxEntry, VmxFile } from './parse-vmx.js';

export const BUSES = ['scsi', 'sata', 'nvme', 'ide'] as const;
export type VmxBus = (typeof BUSES)[number];

/** A device slot: `scsi0:1`. */
export interface Slot {
  bus: VmxBus;
  controller: number;
  unit: number;
  name: string;
}

/** Every `scsiX:Y` / `sataX:Y` / `nvmeX:Y` / `ideX:Y` slot named by a key, in bus order. */
export function deviceSlots(vmx: VmxFile): Slot[] {
  const found = new Map<string, Slot>();
  for (const key of vmx.keys()) {
    const m = /^(scsi|sata|nvme|ide)(\d+):(\d+)\./.exec(key);
    if (!m) continue;
    const name = `${m[1]}${Number(m[2])}:${Number(m[3])}`;
    found.set(name, {
      bus: m[1] as VmxBus,
      controller: Number(m[2]),
      unit: Number(m[3]),
      name,
    });
  }
  return [...found.values()].sort(
    (a, b) =>
      BUSES.indexOf(a.bus) - BUSES.indexOf(b.bus) || a.controller - b.controller || a.unit - b.unit,
  );
}

/** The entry that best locates a device in the file (for messages). */
export function slotEntry(vmx: VmxFile, slot: Slot): VmxEntry | undefined {
  return vmx.entry(`${slot.name}.fileName`) ?? vmx.entry(`${slot.name}.present`);
}
