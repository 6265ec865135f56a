/**
 * The assembly of a parsed descriptor into the neutral {@link SourceGuest} ({@link ovfToGuest}).
 */
import { MetadataError } from '../../errors.js';
import type { SourceGuest } from '../model.js';
import { normalizeUuid } from '../validate.js';
import { GuestBuilder } from './ovf-devices.js';
import type { OvfDescriptor, OvfSource } from './ovf-envelope.js';
import {
  applyVirtualBoxAdapters,
  detectFirmware,
  detectHypervisor,
  MAPPED_SETTINGS,
  vmwareSettings,
} from './ovf-extensions.js';
import { hardwareItems, hardwareSection, hostResource } from './ovf-items.js';
import { attrOf, kid, textIn } from './ovf-xml.js';

/**
 * Maps a parsed descriptor onto the neutral model. Run `validateGuest` on the result.
 * @throws MetadataError naming the descriptor for a missing disk file, a dangling reference, a
 *   missing CPU or memory item, or a number that is not a number.
 */
export function ovfToGuest(desc: OvfDescriptor, src: OvfSource): SourceGuest {
  const notes = [...desc.notes];
  const sys = desc.system;
  const section = hardwareSection(desc, notes);
  const vssd = kid(section, 'System');
  const systemType = textIn(vssd, 'VirtualSystemType');
  const vbox = kid(sys, 'Machine');
  const hypervisor = detectHypervisor(desc, systemType, vbox, notes);
  const settings = vmwareSettings(section);
  const firmware = detectFirmware(settings, vbox, hypervisor, notes);
  const secureBoot =
    settings.values.get('bootOptions.efiSecureBootEnabled') ??
    settings.values.get('uefi.secureBoot.enabled');
  if (secureBoot?.toLowerCase() === 'true') notes.push('UEFI secure boot is enabled on the source');

  const name = textIn(sys, 'Name') ?? attrOf(sys, 'id') ?? textIn(vssd, 'VirtualSystemIdentifier');
  if (name === undefined)
    throw new MetadataError(desc.file, 'the VirtualSystem has no name or ovf:id');

  const os = kid(sys, 'OperatingSystemSection');
  const osId = attrOf(os, 'id');
  const osHint =
    attrOf(os, 'osType') ??
    textIn(os, 'Description') ??
    (osId === undefined ? undefined : `ovf-os-${osId}`);

  const b = new GuestBuilder(desc, src, hypervisor, notes);
  const items = hardwareItems(desc, section, notes);
  b.addControllers(items);
  for (const item of items) b.add(item);
  b.noteUnusedDisks();
  if (vbox) applyVirtualBoxAdapters(vbox, b.nics, notes);
  for (const [i, label] of b.untypedNics) {
    if (b.nics[i]?.model === 'unknown') {
      notes.push(`NIC "${label}" has no ResourceSubType: model unknown`);
    }
  }

  if (b.vcpus === undefined) {
    throw new MetadataError(
      desc.file,
      'no CPU item (ResourceType 3) in the VirtualHardwareSection',
    );
  }
  if (b.memoryBytes === undefined) {
    throw new MetadataError(
      desc.file,
      'no memory item (ResourceType 4) in the VirtualHardwareSection',
    );
  }
  let cpuTopology: SourceGuest['cpuTopology'];
  if (b.cores !== undefined) {
    if (b.cores > 0 && b.vcpus > 0 && b.vcpus % b.cores === 0) {
      cpuTopology = { sockets: b.vcpus / b.cores, cores: b.cores, threads: 1 };
    } else {
      notes.push(`CoresPerSocket ${b.cores} does not divide ${b.vcpus} vCPUs: topology not kept`);
    }
  }

  const nvram = settings.values.get('nvram');
  if (nvram !== undefined) {
    const ref = hostResource(nvram);
    const file = ref?.kind === 'file' ? desc.files.get(ref.id)?.href : undefined;
    notes.push(`UEFI variables (nvram "${file ?? nvram}") not converted`);
  }
  const unmapped = [...settings.values.keys()].filter((k) => !MAPPED_SETTINGS.has(k));
  if (unmapped.length > 0) notes.push(`VMware settings not mapped: ${unmapped.join(', ')}`);

  const uuid =
    normalizeUuid(settings.values.get('uuid.bios')) ?? normalizeUuid(attrOf(vbox, 'uuid'));

  return {
    name,
    hypervisor,
    firmware,
    memoryBytes: b.memoryBytes,
    vcpus: b.vcpus,
    cpuTopology,
    osHint,
    uuid,
    disks: b.disks,
    cdroms: b.cdroms,
    nics: b.nics,
    video: b.video,
    sound: b.sound,
    notes,
    origin: src.origin,
  };
}
