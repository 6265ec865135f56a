/**
 * Notes on what a .vmx holds but the model does not: device families present but not modeled,
 * flags worth knowing, non-default resource settings, suspension and encryption.
 */
import { printable, type VmxEntry, type VmxFile } from './parse-vmx.js';

/** Boolean keys whose TRUE is worth a note. */
const FLAG_NOTES: [string, string][] = [
  ['vhv.enable', 'nested virtualization (vhv.enable) not modeled'],
  ['vvtd.enable', 'virtual IOMMU (vvtd.enable) not modeled'],
  ['vpmc.enable', 'virtual CPU performance counters (vpmc.enable) not modeled'],
  ['mks.enable3d', '3D acceleration (mks.enable3d) not modeled'],
  ['uefi.secureBoot.enabled', 'UEFI secure boot is on (uefi.secureBoot.enabled)'],
  ['vtpm.present', 'virtual TPM (vtpm.present) not modeled: its secrets stay on the source'],
];

/** Device families that are present but not modeled: key prefix -> what it is. */
const UNMODELED_FAMILIES: [RegExp, string][] = [
  [/^floppy\d+$/, 'floppy drive'],
  [/^serial\d+$/, 'serial port'],
  [/^parallel\d+$/, 'parallel port'],
  [/^pcipassthru\d+$/, 'PCI passthrough device'],
  [/^(usb|ehci|usb_xhci)$/, 'USB controller'],
];

/** sched.* values that are VMware's defaults (not worth a note). */
const SCHED_DEFAULTS = new Set(['normal', '0', 'all', 'mhz', 'false', 'off', 'unlimited', '-1']);

/** Device families present but not modeled, flags worth knowing, resource settings. */
export function unmodeledNotes(vmx: VmxFile, notes: Set<string>): void {
  const families = new Map<string, string[]>();
  for (const key of vmx.keys()) {
    const ns = /^([a-z_]+\d*)\.present$/.exec(key)?.[1];
    const what = ns && UNMODELED_FAMILIES.find(([re]) => re.test(ns))?.[1];
    const written = vmx.entry(key)?.key.slice(0, -'.present'.length) ?? key;
    if (what && vmx.bool(key)) families.set(what, [...(families.get(what) ?? []), written]);
  }
  for (const [what, names] of families) notes.add(`${names.join(', ')}: ${what} not modeled`);
  for (const [key, note] of FLAG_NOTES) {
    const e = vmx.entry(key);
    if (e && /^(true|yes|1|on)$/i.test(e.value.trim())) notes.add(note);
  }
  const sched = vmx
    .keys()
    .filter((k) => k.startsWith('sched.') && !k.startsWith('sched.swap.'))
    .map((k) => vmx.entry(k))
    .filter((e): e is VmxEntry => !!e && !SCHED_DEFAULTS.has(e.value.trim().toLowerCase()))
    .map((e) => `${e.key}="${printable(e.value)}"`);
  if (sched.length) notes.add(`resource settings not modeled: ${sched.join(', ')}`);
  const suspended = vmx.str('checkpoint.vmState')?.trim();
  if (suspended) {
    notes.add('the VM is suspended (checkpoint.vmState): its memory state is not carried over');
  }
  if (vmx.keys().some((k) => k.startsWith('encryption.'))) {
    notes.add('the VM is encrypted (encryption.*): its disks cannot be read without its key');
  }
}
