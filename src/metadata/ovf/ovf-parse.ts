/**
 * OVF descriptors (DMTF DSP0243 1.x and 2.x, as ovftool, VMware Workstation, VirtualBox and
 * others write them) to the neutral {@link SourceGuest}. Pure: the XML text in, and a
 * {@link OvfSource} saying where the files the descriptor references are; nothing is read here.
 *
 * Namespace prefixes are stripped by local name (exporters use `ovf:`, `rasd:`, `vssd:`, `sasd:`,
 * `epasd:`, `vmw:`, `vbox:`, or a default namespace and no prefix at all).
 *
 * The work is split by concern: `ovf-xml.ts` (XML helpers), `ovf-envelope.ts` (the envelope,
 * References and DiskSection), `ovf-items.ts` (hardware items and mapping tables),
 * `ovf-devices.ts` (items to devices), `ovf-extensions.ts` (VMware and VirtualBox extensions) and
 * `ovf-guest.ts` (the assembly into the SourceGuest). This module re-exports their public API.
 */
export {
  OVF_NAMESPACE_1,
  OVF_NAMESPACE_2,
  type OvfDescriptor,
  type OvfDiskDef,
  type OvfFileRef,
  type OvfFileRole,
  type OvfLocation,
  type OvfSource,
  parseOvfDescriptor,
} from './ovf-envelope.js';
export { ovfToGuest } from './ovf-guest.js';
export { fileRoles } from './ovf-items.js';
export { unitMultiplier } from './ovf-xml.js';
