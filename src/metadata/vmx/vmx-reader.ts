/**
 * The .vmx reader: a VMware Workstation, Fusion or ESXi configuration file, and the VMDK
 * descriptors its disks name (snapshot deltas followed down to the base). Every file is only
 * read, on the node that holds it; anything the model cannot say goes into `notes`.
 */
import * as path from 'node:path';
import { MetadataError, UsageError } from '../../errors.js';
import type { Node } from '../../node/node.js';
import type {
  CpuTopology,
  DiskController,
  NicModel,
  SourceCdrom,
  SourceDisk,
  SourceGuest,
  SourceNic,
  SourceSound,
  SourceVideo,
} from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptions } from '../reader.js';
import { normalizeMac, normalizeUuid, validateGuest } from '../validate.js';
import { parseVmx, printable, type VmxEntry, type VmxFile } from './parse-vmx.js';
import {
  capacityOf,
  MAX_TEXT_BYTES,
  readSectors,
  readVmdkDescriptor,
  SECTOR,
  type VmdkDescriptor,
} from './vmdk-descriptor.js';

/** A .vmx above this is refused (real ones are a few KiB). */
const MAX_VMX_BYTES = 4 * MAX_TEXT_BYTES;
/** Most parents a snapshot disk may have. */
export const MAX_CHAIN_DEPTH = 255;
/** VMware's memory when `memsize` is absent, in MiB. */
const DEFAULT_MEMSIZE_MIB = 32;

const BUSES = ['scsi', 'sata', 'nvme', 'ide'] as const;
type VmxBus = (typeof BUSES)[number];

/** A device slot: `scsi0:1`. */
interface Slot {
  bus: VmxBus;
  controller: number;
  unit: number;
  name: string;
}

const SCSI_MODELS: Record<string, DiskController> = {
  pvscsi: 'pvscsi',
  lsilogic: 'lsilogic',
  lsisas1068: 'lsisas1068',
  buslogic: 'buslogic',
};

const NIC_MODELS: Record<string, NicModel> = {
  vmxnet3: 'vmxnet3',
  vmxnet2: 'vmxnet2',
  vmxnet: 'vmxnet',
  e1000: 'e1000',
  e1000e: 'e1000e',
  vlance: 'vlance',
};

const DISK_TYPES = new Set(['disk', 'plaindisk', 'scsi-harddisk', 'ata-harddisk', 'rawdisk']);
const CDROM_HOST_TYPES = new Set(['atapi-cdrom', 'cdrom-raw']);
const SOUND_MODELS = new Set(['hdaudio', 'es1371', 'sb16']);

const KNOWN_CREATE_TYPES = new Set(
  [
    'monolithicSparse',
    'monolithicFlat',
    'twoGbMaxExtentSparse',
    'twoGbMaxExtentFlat',
    'streamOptimized',
    'vmfs',
    'vmfsThin',
    'vmfsSparse',
    'seSparse',
    'vsanSparse',
    'vmfsRaw',
  ].map((t) => t.toLowerCase()),
);
const RDM_CREATE_TYPES = new Set(['vmfsrawdevicemap', 'vmfspassthroughrawdevicemap']);
const HOST_DISK_CREATE_TYPES = new Set(['fulldevice', 'partitioneddevice']);

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

function isWindowsPath(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

/** A file name from a .vmx or descriptor, made absolute against `dir` (absolute kept as is). */
function resolveFrom(dir: string, name: string): string {
  return path.posix.isAbsolute(name) ? path.posix.normalize(name) : path.posix.resolve(dir, name);
}

/** Reads the .vmx bytes, refusing what is not a small regular file. */
async function readVmxBytes(node: Node, file: string): Promise<Buffer> {
  const st = await node.stat(file);
  if (!st) throw new MetadataError(file, `no such file on ${node.name}`);
  if (st.type === 'directory' || st.type === 'other') {
    throw new MetadataError(file, `not a regular file (${st.type})`);
  }
  if (st.type === 'file' && st.size > MAX_VMX_BYTES) {
    throw new MetadataError(file, `${st.size} bytes is too large for a .vmx`);
  }
  // A symlink's size is not its target's: read a bounded amount.
  const data =
    st.type === 'file'
      ? await node.readFile(file)
      : await readSectors(node, file, 0, MAX_VMX_BYTES / SECTOR + 1);
  if (data.length > MAX_VMX_BYTES) {
    throw new MetadataError(file, 'more than 4 MiB: too large for a .vmx');
  }
  return data;
}

/** memsize, numvcpus and cpuid.coresPerSocket. */
function cpuAndMemory(
  vmx: VmxFile,
  notes: Set<string>,
): { memoryBytes: number; vcpus: number; cpuTopology?: CpuTopology } {
  let memMib = vmx.uint('memsize');
  if (memMib === undefined) {
    memMib = DEFAULT_MEMSIZE_MIB;
    notes.add(`no memsize: VMware's default of ${DEFAULT_MEMSIZE_MIB} MiB is used`);
  }
  const vcpusEntry = vmx.entry('numvcpus');
  const vcpus = vmx.uint('numvcpus') ?? 1;
  if (vcpusEntry && vcpus < 1) throw vmx.error(vcpusEntry, 'expected at least 1 vCPU');
  const coresEntry = vmx.entry('cpuid.coresPerSocket');
  const cores = vmx.uint('cpuid.coresPerSocket');
  if (!coresEntry || cores === undefined) return { memoryBytes: memMib * 1024 * 1024, vcpus };
  if (cores < 1) throw vmx.error(coresEntry, 'expected at least 1 core per socket');
  if (vcpus % cores !== 0) {
    throw vmx.error(coresEntry, `does not divide numvcpus (${vcpus}) into whole sockets`);
  }
  return {
    memoryBytes: memMib * 1024 * 1024,
    vcpus,
    cpuTopology: { sockets: vcpus / cores, cores, threads: 1 },
  };
}

/** Every `scsiX:Y` / `sataX:Y` / `nvmeX:Y` / `ideX:Y` slot named by a key, in bus order. */
function deviceSlots(vmx: VmxFile): Slot[] {
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

/** The entry that best locates a device in the file (for messages). */
function slotEntry(vmx: VmxFile, slot: Slot): VmxEntry | undefined {
  return vmx.entry(`${slot.name}.fileName`) ?? vmx.entry(`${slot.name}.present`);
}

/** Notes on the kind of disk a descriptor describes. */
function createTypeNote(slot: string, d: VmdkDescriptor): string | undefined {
  const t = d.createType;
  if (t === undefined) return undefined;
  const lower = t.toLowerCase();
  if (RDM_CREATE_TYPES.has(lower)) {
    return `${slot}: raw device mapping (${t}): the data is on a LUN, not in the file`;
  }
  if (HOST_DISK_CREATE_TYPES.has(lower))
    return `${slot}: a physical disk of the source host (${t})`;
  if (!KNOWN_CREATE_TYPES.has(lower)) return `${slot}: unknown VMDK createType "${printable(t)}"`;
  return undefined;
}

/** Checks that a text descriptor's extent files exist (they are only stat'ed, never read). */
async function checkExtents(node: Node, d: VmdkDescriptor, notes: Set<string>): Promise<void> {
  if (d.embedded) return;
  for (const e of d.extents) {
    if (e.file === undefined || e.type === 'ZERO') continue;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e.file)) {
      notes.add(`${path.posix.basename(d.file)}: extent ${printable(e.file)} is not a file`);
      continue;
    }
    const abs = resolveFrom(path.posix.dirname(d.file), e.file);
    if (!(await node.stat(abs))) {
      throw new MetadataError(d.file, `extent ${abs} does not exist on ${node.name}`, {
        line: e.line,
      });
    }
  }
}

/** A disk and the snapshot chain below it. */
interface Chain {
  top: VmdkDescriptor;
  backing: string[];
}

/** Reads the disk at `top` and follows `parentFileNameHint` down to the base. */
async function followChain(
  node: Node,
  vmx: VmxFile,
  slot: Slot,
  top: string,
  notes: Set<string>,
): Promise<Chain> {
  const at = slotEntry(vmx, slot);
  const st = await node.stat(top);
  if (!st) {
    throw new MetadataError(vmx.file, `${slot.name}: disk ${top} does not exist on ${node.name}`, {
      line: at?.line,
    });
  }
  let d = await readVmdkDescriptor(node, top, st);
  await checkExtents(node, d, notes);
  const first = d;
  const seen = [top];
  const backing: string[] = [];
  while (d.parentFileNameHint !== undefined) {
    const hint = d.parentFileNameHint;
    const line = d.embedded ? undefined : d.parentHintLine;
    if (isWindowsPath(hint)) {
      throw new MetadataError(d.file, `parentFileNameHint "${printable(hint)}" is a Windows path`, {
        line,
        hint: 'copy the parent disk next to this one and make the hint relative',
      });
    }
    const parent = resolveFrom(path.posix.dirname(d.file), hint);
    if (seen.includes(parent)) {
      throw new MetadataError(d.file, `snapshot chain loops: ${[...seen, parent].join(' -> ')}`, {
        line,
      });
    }
    if (backing.length >= MAX_CHAIN_DEPTH) {
      throw new MetadataError(
        vmx.file,
        `${slot.name}: snapshot chain of ${top} is deeper than ${MAX_CHAIN_DEPTH} disks`,
        { line: at?.line },
      );
    }
    const pst = await node.stat(parent);
    if (!pst) {
      throw new MetadataError(
        d.file,
        `parent disk ${parent} (parentFileNameHint) does not exist on ${node.name}`,
        { line, hint: `it is in the snapshot chain of ${slot.name} in ${vmx.file}` },
      );
    }
    const p = await readVmdkDescriptor(node, parent, pst);
    if (d.parentCid && p.cid && d.parentCid !== p.cid) {
      notes.add(
        `${slot.name}: parentCID of ${path.posix.basename(d.file)} does not match the CID of ` +
          `${path.posix.basename(parent)} (the parent changed after the snapshot)`,
      );
    }
    await checkExtents(node, p, notes);
    seen.push(parent);
    backing.push(parent);
    d = p;
  }
  return { top: first, backing };
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
async function readStorage(
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
function applyBootOrder(vmx: VmxFile, disks: SourceDisk[], notes: Set<string>): void {
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

/** The NIC model of `ethernetN`. */
function nicModel(vmx: VmxFile, ns: string, notes: Set<string>): NicModel {
  const dev = vmx.str(`${ns}.virtualDev`)?.trim().toLowerCase();
  if (dev === undefined) {
    notes.add(`${ns} has no virtualDev: vlance assumed (VMware's default)`);
    return 'vlance';
  }
  const features = vmx.uint(`${ns}.features`);
  if (dev === 'vmxnet' && features !== undefined && features > 0) return 'vmxnet2';
  const model = NIC_MODELS[dev];
  if (!model) notes.add(`unknown NIC model "${printable(dev)}" on ${ns}`);
  return model ?? 'unknown';
}

/** The MAC of `ethernetN`, chosen by addressType. */
function nicMac(vmx: VmxFile, ns: string, notes: Set<string>): string | undefined {
  const type = vmx.str(`${ns}.addressType`)?.trim().toLowerCase() ?? 'generated';
  const generated = vmx.str(`${ns}.generatedAddress`);
  const fixed = vmx.str(`${ns}.address`);
  if (!['generated', 'static', 'vpx'].includes(type)) {
    notes.add(`${ns}: unknown addressType "${printable(type)}"`);
  }
  const raw = type === 'static' ? (fixed ?? generated) : (generated ?? fixed);
  if (raw === undefined || raw.trim() === '') {
    notes.add(`${ns} has no MAC address`);
    return undefined;
  }
  const mac = normalizeMac(raw);
  if (!mac) notes.add(`${ns}: "${printable(raw)}" is not a MAC address`);
  return mac;
}

/** What `ethernetN` is plugged into. */
function nicNetwork(
  vmx: VmxFile,
  ns: string,
  notes: Set<string>,
): Pick<SourceNic, 'network' | 'networkKind'> {
  const portGroup = vmx.str(`${ns}.networkName`);
  if (portGroup !== undefined && portGroup !== '') {
    return { network: portGroup, networkKind: 'portgroup' };
  }
  const dvPortGroup = vmx.str(`${ns}.dvs.portgroupId`);
  if (dvPortGroup !== undefined && dvPortGroup !== '') {
    notes.add(
      `${ns}: distributed port group ${printable(dvPortGroup)} (an id; its name is in vCenter)`,
    );
    return { network: dvPortGroup, networkKind: 'portgroup' };
  }
  const conn = vmx.str(`${ns}.connectionType`)?.trim().toLowerCase();
  if (conn === undefined || conn === '') {
    notes.add(`${ns} names no network (no networkName, no connectionType)`);
    return { networkKind: 'unknown' };
  }
  let network = conn;
  if (conn === 'custom') network = vmx.str(`${ns}.vnet`) || 'custom';
  else if (conn === 'pvn') network = `pvn ${vmx.str(`${ns}.pvnID`) ?? ''}`.trim();
  else if (!['bridged', 'nat', 'hostonly'].includes(conn)) {
    notes.add(`${ns}: unknown connectionType "${printable(conn)}"`);
  }
  notes.add(`${ns}: Workstation connectionType "${printable(conn)}" kept as network "${network}"`);
  return { network, networkKind: 'network' };
}

/** ethernetN NICs in index order. */
function readNics(vmx: VmxFile, notes: Set<string>): SourceNic[] {
  const indices = new Set<number>();
  for (const key of vmx.keys()) {
    const m = /^ethernet(\d+)\./.exec(key);
    if (m) indices.add(Number(m[1]));
  }
  const nics: SourceNic[] = [];
  for (const n of [...indices].sort((a, b) => a - b)) {
    const ns = `ethernet${n}`;
    if (vmx.bool(`${ns}.present`) === false) continue;
    if (vmx.bool(`${ns}.startConnected`) === false) notes.add(`${ns}: not connected at power-on`);
    const model = nicModel(vmx, ns, notes);
    const mac = nicMac(vmx, ns, notes);
    nics.push({ ...(mac ? { mac } : {}), model, ...nicNetwork(vmx, ns, notes) });
  }
  return nics;
}

/** The SVGA adapter every VMware VM has, unless svga.present says otherwise. */
function readVideo(vmx: VmxFile): SourceVideo | undefined {
  if (vmx.bool('svga.present') === false) return undefined;
  const vram = vmx.uint('svga.vramSize');
  return vram === undefined ? { model: 'vmvga' } : { model: 'vmvga', vramBytes: vram };
}

/** sound.present and sound.virtualDev. */
function readSound(vmx: VmxFile, notes: Set<string>): SourceSound | undefined {
  const present = vmx.bool('sound.present');
  if (present === false) return undefined;
  if (present === undefined && !vmx.keys().some((k) => k.startsWith('sound.'))) return undefined;
  const dev = vmx.str('sound.virtualDev')?.trim().toLowerCase();
  if (dev === undefined || dev === '') {
    notes.add("sound.virtualDev absent: es1371 assumed (VMware's default)");
    return { model: 'es1371' };
  }
  if (!SOUND_MODELS.has(dev)) notes.add(`unknown sound device "${printable(dev)}"`);
  return { model: dev };
}

/** Device families present but not modeled, flags worth knowing, resource settings. */
function unmodeledNotes(vmx: VmxFile, notes: Set<string>): void {
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

/** firmware = "efi" is UEFI; absent is BIOS. */
function readFirmware(vmx: VmxFile, notes: Set<string>): SourceGuest['firmware'] {
  const fw = vmx.str('firmware')?.trim().toLowerCase();
  if (fw === undefined || fw === 'bios') return 'bios';
  if (fw === 'efi') return 'uefi';
  notes.add(`unknown firmware "${printable(fw)}"`);
  return 'unknown';
}

/** Reads a VMware .vmx file and the disks it names. */
export class VmxReader implements MetadataReader {
  readonly kind = 'vmx' as const;

  /** One .vmx path. */
  check(source: string[], _options: ReaderOptions): void {
    if (source.length !== 1) {
      throw new UsageError(`-i vmx: give exactly one .vmx file (got ${source.length})`);
    }
    if ((source[0] ?? '').trim() === '') throw new UsageError('-i vmx: the .vmx path is empty');
  }

  /** Reads the .vmx on `ctx.node`, follows its disks' snapshot chains, and validates. */
  async read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, options);
    const given = source[0] ?? '';
    const file = ctx.node.isLocal ? path.resolve(given) : path.posix.normalize(given);
    if (!path.posix.isAbsolute(file)) {
      throw new UsageError(`-i vmx: '${given}' must be an absolute path on ${ctx.node.name}`);
    }
    const vmx = parseVmx(await readVmxBytes(ctx.node, file), file);
    const notes = new Set<string>(vmx.notes);
    const cpu = cpuAndMemory(vmx, notes);
    const { disks, cdroms } = await readStorage(ctx.node, vmx, notes);
    applyBootOrder(vmx, disks, notes);
    const nics = readNics(vmx, notes);
    const video = readVideo(vmx);
    const sound = readSound(vmx, notes);
    const firmware = readFirmware(vmx, notes);
    unmodeledNotes(vmx, notes);
    const rawUuid = vmx.str('uuid.bios');
    const uuid = normalizeUuid(rawUuid);
    if (rawUuid !== undefined && !uuid)
      notes.add(`uuid.bios "${printable(rawUuid)}" is not a UUID`);
    const displayName = vmx.str('displayName')?.trim();
    const guest: SourceGuest = {
      name: displayName || path.posix.basename(file).replace(/\.vmx$/i, ''),
      hypervisor: 'vmware',
      firmware,
      ...cpu,
      osHint: vmx.str('guestOS')?.trim() || undefined,
      uuid,
      disks,
      cdroms,
      nics,
      video,
      sound,
      notes: [...notes],
      origin: { kind: 'vmx', source: file },
    };
    return validateGuest(guest, file);
  }
}
