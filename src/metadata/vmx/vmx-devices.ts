/**
 * Storage devices of a .vmx: disks and CD-ROMs on their SCSI, SATA, NVMe or IDE controllers,
 * mapped to the neutral model, and the disks' boot order from `bios.hddOrder`.
 */
import * as path from 'node:path';
import { MetadataError } from '../../errors.js';
import { capacityOf } from '../../formats/vmdk-descriptor.js';
import type { Node } from '../../node/node.js';
import type { DiskController, SourceCdrom, SourceDisk } from '../model.js';
import { printable, type VmxFile } from './parse-vmx.js';
import { createTypeNote, followChain } from './vmx-chain.js';
import { isWindowsPath, resolveFrom } from './vmx-paths.js';
import { deviceSlots, type Slot, slotEntry } from './vmx-slots.js';

const SCSI_MODELS: Record<string, DiskController> = {
  pvscsi: 'pvscsi',
  lsilogic: 'lsilogic',
  lsisas1068: 'lsisas1068',
  buslogic: 'buslogic',
};

const DISK_TYPES = new Set(['disk', 'plaindisk', 'scsi-harddisk', 'ata-harddisk', 'rawdisk']);
const CDROM_HOST_TYPES = new Set(['atapi-cdrom', 'cdrom-raw']);

/** The controller a slot hangs on: whether it is present, and its model. */
function controllerOf(vmx: VmxFile, slot: Slot, notes: Set<string>): DiskController | undefined {
  const ns = `${slot.bus}${slot.controller}`;
  if (vmx.bool(`${ns}.present`) === false) return undefined;
  if (slot.bus !== 'scsi') return slot.bus;
  const dev = vmx.str(`${ns}.virtualDev`);
  if (dev === undefined) {
    notes.add(`${ns} has no virtualDev: SCSI controller model unknown`);
    return 'unknown';
  }
  const model = SCSI_MODELS[dev.toLowerCase()];
  if (!model) notes.add(`unknown SCSI controller model "${printable(dev)}" on ${ns}`);
  return model ?? 'unknown';
}

/** A disk slot: its file and chain, bus, controller and flags. */
async function readDisk(
  node: Node,
  vmx: VmxFile,
  slot: Slot,
  controller: DiskController,
  notes: Set<string>,
): Promise<SourceDisk> {
  const name = slot.name;
  const fileEntry = vmx.entry(`${name}.fileName`);
  if (!fileEntry || fileEntry.value.trim() === '') {
    throw new MetadataError(vmx.file, `${name} is a disk without a fileName`, {
      line: slotEntry(vmx, slot)?.line,
    });
  }
  if (isWindowsPath(fileEntry.value)) {
    throw vmx.error(
      fileEntry,
      'a Windows path, which cannot be read here',
      "copy the VM's files to the node and make the disk path relative to the .vmx",
    );
  }
  const file = resolveFrom(path.posix.dirname(vmx.file), fileEntry.value);
  const chain = await followChain(node, vmx, slot, file, notes);
  const typeNote = createTypeNote(name, chain.top);
  if (typeNote) notes.add(typeNote);
  const mode = vmx.str(`${name}.mode`);
  if (mode !== undefined && mode.toLowerCase() !== 'persistent') {
    const lost = /nonpersistent/i.test(mode) ? ': changes are discarded at power-off' : '';
    notes.add(`${name}: disk mode ${printable(mode)}${lost}`);
  }
  const extentsReadOnly =
    chain.top.extents.length > 0 && chain.top.extents.every((e) => e.access !== 'RW');
  return {
    path: file,
    backingChain: chain.backing,
    format: 'vmdk',
    bus: slot.bus,
    controller,
    slot: name,
    controllerIndex: slot.controller,
    unit: slot.unit,
    bootOrder: undefined,
    readOnly: vmx.bool(`${name}.readonly`) === true || extentsReadOnly,
    capacityBytes: capacityOf(chain.top),
  };
}

/** A CD-ROM slot. Images are not opened (an ISO left on a datastore is no reason to fail). */
function readCdrom(vmx: VmxFile, slot: Slot, type: string, notes: Set<string>): SourceCdrom {
  const name = slot.name;
  const fileName = vmx.str(`${name}.fileName`)?.trim() ?? '';
  if (vmx.bool(`${name}.startConnected`) === false) {
    notes.add(`${name}: CD-ROM not connected at power-on`);
  }
  if (CDROM_HOST_TYPES.has(type)) {
    notes.add(`${name}: host or client CD-ROM drive (${type}), no image`);
    return { bus: slot.bus, slot: name };
  }
  if (fileName === '') return { bus: slot.bus, slot: name };
  return { bus: slot.bus, slot: name, path: resolveFrom(path.posix.dirname(vmx.file), fileName) };
}

/** Disks and CD-ROMs, in bus, controller and unit order. */
export async function readStorage(
  node: Node,
  vmx: VmxFile,
  notes: Set<string>,
): Promise<{ disks: SourceDisk[]; cdroms: SourceCdrom[] }> {
  const disks: SourceDisk[] = [];
  const cdroms: SourceCdrom[] = [];
  for (const slot of deviceSlots(vmx)) {
    const present = vmx.bool(`${slot.name}.present`);
    // A stale key (Workstation leaves `scsi0:0.redo = ""`) is no device.
    if (present === false) continue;
    if (present === undefined && vmx.str(`${slot.name}.fileName`) === undefined) continue;
    const controller = controllerOf(vmx, slot, notes);
    if (controller === undefined) {
      if (vmx.str(`${slot.name}.fileName`) !== undefined) {
        notes.add(`${slot.name} skipped: its controller is not present`);
      }
      continue;
    }
    const declared = vmx.str(`${slot.name}.deviceType`)?.trim().toLowerCase();
    const fileName = vmx.str(`${slot.name}.fileName`) ?? '';
    let type = declared ?? 'disk';
    if (declared === undefined && /\.iso$/i.test(fileName)) {
      type = 'cdrom-image';
      notes.add(`${slot.name} has no deviceType and an .iso file: taken as a CD-ROM`);
    }
    if (type === 'cdrom-image' || CDROM_HOST_TYPES.has(type)) {
      cdroms.push(readCdrom(vmx, slot, type, notes));
    } else if (DISK_TYPES.has(type)) {
      if (type === 'rawdisk') {
        notes.add(`${slot.name}: a physical disk of the source host (rawDisk)`);
      }
      disks.push(await readDisk(node, vmx, slot, controller, notes));
    } else if (type === 'scsi-passthru') {
      notes.add(`${slot.name}: generic SCSI passthrough device not modeled`);
    } else {
      notes.add(`${slot.name}: unknown deviceType "${printable(type)}" skipped`);
    }
  }
  return { disks, cdroms };
}

/** bios.hddOrder gives the disks' boot order; bios.bootOrder (device classes) is noted. */
export function applyBootOrder(vmx: VmxFile, disks: SourceDisk[], notes: Set<string>): void {
  const classes = vmx.str('bios.bootOrder');
  if (classes !== undefined && classes.trim() !== '') {
    notes.add(`boot device order (bios.bootOrder): ${printable(classes.trim())}`);
  }
  const order = vmx.str('bios.hddOrder');
  if (order === undefined) return;
  let next = 1;
  for (const raw of order.split(',')) {
    const slot = raw.trim().toLowerCase();
    if (slot === '') continue;
    const disk = disks.find((d) => d.slot === slot);
    if (!disk) {
      notes.add(`bios.hddOrder names ${printable(slot)}, which is not a disk`);
      continue;
    }
    if (disk.bootOrder === undefined) disk.bootOrder = next++;
  }
}
