/**
 * libvirt domain XML → the neutral source model. Pure: no file is read and no command runs; the
 * readers (`libvirtxml-reader.ts`, `libvirt-reader.ts`) resolve and check disk paths afterwards
 * from the {@link DiskSourceRef}s returned beside the guest.
 *
 * Handles what `virsh dumpxml` and the Xen toolstacks write for every hypervisor this tool
 * converts from: Xen PV (pygrub or direct kernel), Xen HVM, KVM/QEMU and VMware ESX (libvirt's
 * ESX driver). Anything that has no place in the model is kept in `notes`.
 */
import { MetadataError } from '../../errors.js';
import type {
  CpuTopology,
  DiskBus,
  DiskController,
  DiskFormat,
  Firmware,
  NetworkKind,
  NicModel,
  SourceCdrom,
  SourceDisk,
  SourceGuest,
  SourceHypervisor,
  SourceNic,
  SourceOrigin,
  SourceSound,
  SourceVideo,
  VideoModel,
  XenPvBoot,
} from '../model.js';
import { normalizeMac, normalizeUuid } from '../validate.js';
import { asArray, attr, parseUntrustedXml, textOf } from '../xml.js';

/** A parsed element: attributes under `@_name`, children by name, text under `#text`. */
type El = Record<string, unknown>;

/** How a disk's or CD-ROM's source is named in the XML; readers resolve and check it. */
export type DiskSourceKind = 'file' | 'block' | 'volume' | 'network' | 'datastore';

/** Where a disk or CD-ROM of the guest came from, for the reader's second look. */
export interface DiskSourceRef {
  device: 'disk' | 'cdrom';
  /** Index into `guest.disks` or `guest.cdroms`. */
  index: number;
  kind: DiskSourceKind;
  /** The target dev (`vda`, `hdc`), for messages. */
  slot: string;
  /** For `volume`: the storage pool and volume names. */
  pool?: string | undefined;
  volume?: string | undefined;
}

/** The result of {@link parseDomainXml}: the guest (not yet validated) and its disk sources. */
export interface ParsedDomain {
  guest: SourceGuest;
  sources: DiskSourceRef[];
  /** `<domain type>` as written (`kvm`, `xen`, `vmware`, ...). */
  domainType: string;
}

const LIBOSINFO_NS = 'http://libosinfo.org/xmlns/libvirt/domain/1.0';
const MAX_NUMBER_DIGITS = 64;

/** Any element (or an empty/text-only one) as an object. */
function asEl(value: unknown): El {
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as El;
  if (typeof value === 'string' && value !== '') return { '#text': value };
  return {};
}

function children(parent: El | undefined, name: string): El[] {
  return parent ? asArray(parent[name]).map(asEl) : [];
}

function child(parent: El | undefined, name: string): El | undefined {
  return children(parent, name)[0];
}

function has(parent: El | undefined, name: string): boolean {
  return parent !== undefined && parent[name] !== undefined;
}

function textIn(parent: El | undefined, name: string): string | undefined {
  const t = textOf(parent?.[name] === undefined ? undefined : child(parent, name));
  const trimmed = t?.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** Parses a non-negative decimal integer attribute; undefined when absent or not a number. */
function intAttr(element: El | undefined, name: string): number | undefined {
  const v = attr(element, name)?.trim();
  if (v === undefined || !/^\d{1,9}$/.test(v)) return undefined;
  return Number(v);
}

/** `table[key]` for own keys only (an XML value `constructor` must not find Object's). */
function lookup<T>(table: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Sizes

/** libvirt's scaled-integer units (virScaleInteger): case-insensitive, default KiB. */
function unitFactor(unit: string): bigint | undefined {
  const u = unit.toLowerCase();
  if (u === 'b' || u === 'bytes') return 1n;
  const m = /^([kmgtpe])(ib|b)?$/.exec(u);
  if (!m) return undefined;
  const power = BigInt('kmgtpe'.indexOf(m[1] as string) + 1);
  return m[2] === 'b' ? 1000n ** power : 1024n ** power;
}

/**
 * A `<memory unit=...>`-style element in bytes. A number too large for the model is returned as
 * is (possibly beyond 2^53): validateGuest refuses it, naming the field.
 */
function scaledBytes(element: El, what: string, file: string): number {
  const raw = (textOf(element) ?? '').trim();
  if (!/^\d+$/.test(raw)) {
    throw new MetadataError(file, `<${what}> "${raw.slice(0, 40)}" is not a whole number`);
  }
  if (raw.length > MAX_NUMBER_DIGITS) {
    throw new MetadataError(file, `<${what}> has ${raw.length} digits: absurdly large`);
  }
  const unit = attr(element, 'unit') ?? 'KiB';
  const factor = unitFactor(unit);
  if (factor === undefined) {
    throw new MetadataError(file, `<${what} unit="${unit}">: not a unit libvirt knows`);
  }
  return Number(BigInt(raw) * factor);
}

// ---------------------------------------------------------------------------------------------
// Hypervisor, firmware, CPU

function hypervisorOf(
  domainType: string,
  osType: string | undefined,
  notes: string[],
): SourceHypervisor {
  switch (domainType) {
    case 'kvm':
    case 'qemu':
      if (osType && osType !== 'hvm') notes.push(`os type "${osType}" on a ${domainType} domain`);
      return 'kvm';
    case 'xen':
      if (osType === 'hvm') return 'xen-fv';
      if (osType === 'xenpvh') notes.push('Xen PVH guest: read as a Xen PV guest');
      else if (osType && osType !== 'linux' && osType !== 'xen') {
        notes.push(`os type "${osType}" on a xen domain: read as a Xen PV guest`);
      }
      return 'xen-pv';
    case 'vmware':
      return 'vmware';
    default:
      notes.push(`domain type "${domainType}" is not a hypervisor this tool converts from`);
      return 'unknown';
  }
}

const UEFI_LOADER = /ovmf|edk2|aavmf|qemu_efi|\befi\b/i;

function firmwareOf(os: El | undefined, hv: SourceHypervisor, arch: string | undefined): Firmware {
  const declared = attr(os, 'firmware');
  if (declared === 'efi') return 'uefi';
  if (declared === 'bios') return 'bios';
  const loader = child(os, 'loader');
  if (loader) {
    const path = textOf(loader)?.trim() ?? '';
    if (attr(loader, 'type') === 'pflash' || UEFI_LOADER.test(path)) return 'uefi';
    return 'bios';
  }
  if (hv === 'xen-pv' || hv === 'unknown') return 'unknown';
  const x86 = arch === undefined || /^(x86_64|i[3-6]86)$/.test(arch);
  return x86 ? 'bios' : 'unknown';
}

function topologyOf(cpu: El | undefined, vcpus: number, notes: string[]): CpuTopology | undefined {
  const topo = child(cpu, 'topology');
  if (!topo) return undefined;
  const sockets = intAttr(topo, 'sockets');
  const cores = intAttr(topo, 'cores');
  const threads = intAttr(topo, 'threads');
  if (sockets === undefined || cores === undefined || threads === undefined) {
    notes.push('<cpu><topology> without numeric sockets, cores and threads ignored');
    return undefined;
  }
  const dies = intAttr(topo, 'dies') ?? 1;
  const clusters = intAttr(topo, 'clusters') ?? 1;
  if (dies > 1) notes.push(`cpu topology: ${dies} dies per socket counted as sockets`);
  if (clusters > 1) notes.push(`cpu topology: ${clusters} clusters per die counted as cores`);
  const t: CpuTopology = { sockets: sockets * dies, cores: cores * clusters, threads };
  if (t.sockets * t.cores * t.threads !== vcpus) {
    notes.push(`cpu topology ${t.sockets}×${t.cores}×${t.threads} does not match ${vcpus} vcpus`);
  }
  return t;
}

function cpuNote(cpu: El | undefined, notes: string[]): void {
  if (!cpu) return;
  const mode = attr(cpu, 'mode');
  const model = textIn(cpu, 'model');
  if (model) notes.push(`cpu model "${model}"${mode ? ` (mode ${mode})` : ''}`);
  else if (mode && mode !== 'custom') notes.push(`cpu mode ${mode}`);
}

function osHintOf(metadata: El | undefined): string | undefined {
  if (!metadata) return undefined;
  for (const [key, value] of Object.entries(metadata)) {
    if (key.startsWith('@_') || key === '#text') continue;
    for (const el of asArray(value).map(asEl)) {
      const prefix = key.includes(':') ? key.slice(0, key.indexOf(':')) : undefined;
      const ns = prefix ? attr(el, `xmlns:${prefix}`) : attr(el, 'xmlns');
      if (ns !== LIBOSINFO_NS && key !== 'libosinfo:libosinfo') continue;
      const osKey = prefix ? `${prefix}:os` : 'os';
      const id = attr(child(el, osKey), 'id');
      if (id) return id;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Disks

const BUSES: Record<string, DiskBus> = {
  ide: 'ide',
  scsi: 'scsi',
  sata: 'sata',
  virtio: 'virtio',
  xen: 'xen',
  usb: 'usb',
  nvme: 'nvme',
};

const SCSI_MODELS: Record<string, DiskController> = {
  'virtio-scsi': 'virtio-scsi',
  'virtio-transitional': 'virtio-scsi',
  'virtio-non-transitional': 'virtio-scsi',
  lsilogic: 'lsilogic',
  lsisas1068: 'lsisas1068',
  buslogic: 'buslogic',
  vmpvscsi: 'pvscsi',
};

const FORMATS: Record<string, DiskFormat> = {
  raw: 'raw',
  aio: 'raw',
  qcow2: 'qcow2',
  vmdk: 'vmdk',
  vpc: 'vhd',
  vhd: 'vhd',
  vhdx: 'vhdx',
  vdi: 'vdi',
};

/** `hda` → 0, `xvdb` → 1, `sdaa` → 26 (as guestfs's drive_index). */
function driveIndex(letters: string): number | undefined {
  if (!/^[a-z]{1,3}$/.test(letters)) return undefined;
  let n = 0;
  for (const c of letters) n = n * 26 + (c.charCodeAt(0) - 96);
  return n - 1;
}

/** `ioemu:hda`, `hdc:cdrom` (old xend) → `hda`, `hdc`. */
function cleanDev(dev: string | undefined): string | undefined {
  if (!dev) return undefined;
  return dev.replace(/^ioemu:/, '').replace(/:(cdrom|disk)$/, '');
}

function busOf(
  target: El | undefined,
  dev: string | undefined,
  what: string,
  notes: string[],
): DiskBus {
  const declared = attr(target, 'bus');
  if (declared) {
    const bus = lookup(BUSES, declared);
    if (!bus) notes.push(`${what}: unknown bus "${declared}"`);
    return bus ?? 'unknown';
  }
  if (dev?.startsWith('xvd')) return 'xen';
  if (dev?.startsWith('hd')) return 'ide';
  if (dev?.startsWith('sd')) return 'scsi';
  if (dev?.startsWith('vd')) return 'virtio';
  if (dev?.startsWith('nvme')) return 'nvme';
  return 'unknown';
}

interface Controllers {
  scsi: Map<number, string | undefined>;
}

function controllersOf(devices: El | undefined): Controllers {
  const scsi = new Map<number, string | undefined>();
  for (const c of children(devices, 'controller')) {
    if (attr(c, 'type') !== 'scsi') continue;
    scsi.set(intAttr(c, 'index') ?? 0, attr(c, 'model'));
  }
  return { scsi };
}

function controllerOf(
  bus: DiskBus,
  index: number,
  controllers: Controllers,
  slot: string,
  notes: string[],
): DiskController {
  if (bus !== 'scsi') return bus;
  if (!controllers.scsi.has(index)) {
    notes.push(`disk ${slot}: no <controller type="scsi" index="${index}">, model unknown`);
    return 'unknown';
  }
  const model = controllers.scsi.get(index);
  if (model === undefined) {
    notes.push(`disk ${slot}: scsi controller ${index} has no model`);
    return 'unknown';
  }
  const mapped = lookup(SCSI_MODELS, model);
  if (!mapped) notes.push(`disk ${slot}: unknown scsi controller model "${model}"`);
  return mapped ?? 'unknown';
}

/** Controller number and unit from `<address type='drive'>`, else from an `hdX` name. */
function placeOf(
  address: El | undefined,
  bus: DiskBus,
  dev: string | undefined,
): { controllerIndex?: number; unit?: number } {
  if (address && attr(address, 'type') === 'drive') {
    const controllerIndex = intAttr(address, 'controller') ?? 0;
    const unit = intAttr(address, 'unit') ?? 0;
    if (bus === 'ide') return { controllerIndex, unit: (intAttr(address, 'bus') ?? 0) * 2 + unit };
    if (bus === 'scsi' || bus === 'sata' || bus === 'nvme') return { controllerIndex, unit };
    return {};
  }
  if (bus === 'ide' && dev?.startsWith('hd')) {
    const unit = driveIndex(dev.slice(2));
    if (unit !== undefined && unit < 4) return { controllerIndex: 0, unit };
  }
  return {};
}

function formatOf(
  driver: El | undefined,
  hv: SourceHypervisor,
  path: string,
  slot: string,
  notes: string[],
): DiskFormat {
  const type = attr(driver, 'type');
  if (type) {
    const f = lookup(FORMATS, type.toLowerCase());
    if (!f) notes.push(`disk ${slot}: format "${type}" is not one this tool reads`);
    return f ?? 'unknown';
  }
  const name = attr(driver, 'name');
  // Xen: a loop-mounted file or a physical device, both raw.
  if (name === 'file' || name === 'phy') return 'raw';
  // libvirt's ESX driver writes no <driver>: a datastore disk is always a VMDK.
  if (hv === 'vmware' && /\.vmdk$/i.test(path)) return 'vmdk';
  notes.push(`disk ${slot}: no <driver type>, format unknown`);
  return 'unknown';
}

interface Source {
  kind: DiskSourceKind;
  path: string;
  pool?: string;
  volume?: string;
}

const DATASTORE = /^\[[^\]]*\] /;

/** The source of a disk or CD-ROM; undefined (with a note) when it has none usable. */
function sourceOf(disk: El, what: string, notes: string[]): Source | 'empty' | undefined {
  const src = child(disk, 'source');
  const file = attr(src, 'file');
  const dev = attr(src, 'dev');
  const pool = attr(src, 'pool');
  const volume = attr(src, 'volume');
  const protocol = attr(src, 'protocol');
  const type =
    attr(disk, 'type') ??
    (file ? 'file' : dev ? 'block' : pool ? 'volume' : protocol ? 'network' : 'file');
  switch (type) {
    case 'file':
      if (!file) return 'empty';
      return { kind: DATASTORE.test(file) ? 'datastore' : 'file', path: file };
    case 'block':
      return dev ? { kind: 'block', path: dev } : 'empty';
    case 'volume':
      if (!pool || !volume) {
        if (!pool && !volume) return 'empty';
        notes.push(`${what}: <source> needs both pool and volume`);
        return undefined;
      }
      return { kind: 'volume', path: `${pool}/${volume}`, pool, volume };
    case 'network': {
      const name = attr(src, 'name');
      const hosts = children(src, 'host').map((h) => {
        const port = attr(h, 'port');
        return `${attr(h, 'name') ?? attr(h, 'socket') ?? '?'}${port ? `:${port}` : ''}`;
      });
      const on = hosts.length ? ` on ${hosts.join(', ')}` : '';
      const path = name ?? `${protocol ?? 'network'}://${hosts[0] ?? ''}`;
      notes.push(
        `${what}: network disk (protocol ${protocol ?? '?'}, "${path}"${on}) is not a file`,
      );
      return { kind: 'network', path };
    }
    default:
      notes.push(`${what}: <disk type="${type}"> is not supported, left out`);
      return undefined;
  }
}

/** Backing files of a live `<backingStore>` chain, top's parent first. */
function backingChainOf(disk: El): string[] {
  const chain: string[] = [];
  let store = child(disk, 'backingStore');
  while (store && chain.length < 64) {
    const src = child(store, 'source');
    const p = attr(src, 'file') ?? attr(src, 'dev');
    if (!p) break;
    chain.push(p);
    store = child(store, 'backingStore');
  }
  return chain;
}

// ---------------------------------------------------------------------------------------------
// NICs, video, sound

const NIC_MODELS: Record<string, NicModel> = {
  virtio: 'virtio',
  'virtio-transitional': 'virtio',
  'virtio-non-transitional': 'virtio',
  e1000: 'e1000',
  'e1000-82545em': 'e1000',
  e1000e: 'e1000e',
  rtl8139: 'rtl8139',
  vmxnet3: 'vmxnet3',
  vmxnet2: 'vmxnet2',
  vmxnet: 'vmxnet',
  vlance: 'vlance',
  pcnet: 'pcnet',
  netfront: 'xen-netfront',
};

function nicOf(iface: El, i: number, hv: SourceHypervisor, notes: string[]): SourceNic {
  const rawMac = attr(child(iface, 'mac'), 'address');
  const mac = normalizeMac(rawMac);
  const label = `interface ${mac ?? `#${i}`}`;
  if (rawMac && !mac) notes.push(`${label}: MAC "${rawMac}" is not a MAC address`);
  const type = attr(iface, 'type') ?? '?';
  const src = child(iface, 'source');
  let network: string | undefined;
  let networkKind: NetworkKind;
  switch (type) {
    case 'network':
      network = attr(src, 'network');
      networkKind = 'network';
      if (attr(src, 'portgroup')) notes.push(`${label}: port group "${attr(src, 'portgroup')}"`);
      break;
    case 'bridge':
      network = attr(src, 'bridge');
      networkKind = hv === 'vmware' ? 'portgroup' : 'bridge';
      break;
    case 'vds':
      network = attr(src, 'portgroupid');
      networkKind = 'portgroup';
      notes.push(`${label}: VMware distributed switch ${attr(src, 'switchid') ?? '?'}`);
      break;
    case 'user':
      networkKind = 'user';
      break;
    case 'direct':
      network = attr(src, 'dev');
      networkKind = 'unknown';
      notes.push(
        `${label}: type "direct" (macvtap on ${network ?? '?'}, mode ${attr(src, 'mode') ?? 'vepa'})`,
      );
      break;
    default:
      networkKind = 'unknown';
      notes.push(`${label}: interface type "${type}" not mapped`);
  }
  const modelType = attr(child(iface, 'model'), 'type');
  let model: NicModel;
  if (modelType) {
    model = lookup(NIC_MODELS, modelType) ?? 'unknown';
    if (model === 'unknown') notes.push(`${label}: unknown NIC model "${modelType}"`);
  } else if (hv === 'xen-pv') {
    model = 'xen-netfront';
  } else if (hv === 'xen-fv') {
    model = 'rtl8139';
    notes.push(`${label}: no <model>: Xen HVM's emulated default rtl8139 assumed`);
  } else {
    model = 'unknown';
    notes.push(`${label}: no <model>, NIC model unknown`);
  }
  const order = attr(child(iface, 'boot'), 'order');
  if (order) notes.push(`${label}: boot order ${order} (network boot)`);
  return { mac, model, network, networkKind };
}

const VIDEO_MODELS: Record<string, VideoModel> = {
  vga: 'vga',
  cirrus: 'cirrus',
  vmvga: 'vmvga',
  qxl: 'qxl',
  virtio: 'virtio',
  xen: 'xen',
};

function videoOf(devices: El | undefined, notes: string[]): SourceVideo | undefined {
  const videos = children(devices, 'video');
  videos.slice(1).forEach((v, i) => {
    notes.push(`extra video device ${i + 1} (${attr(child(v, 'model'), 'type') ?? '?'}) ignored`);
  });
  const first = videos[0];
  if (!first) return undefined;
  const m = child(first, 'model');
  const type = attr(m, 'type') ?? 'default';
  if (type === 'none') return undefined;
  const model = lookup(VIDEO_MODELS, type) ?? 'unknown';
  if (model === 'unknown') notes.push(`unknown video model "${type}"`);
  const vram = intAttr(m, 'vram');
  return { model, vramBytes: vram === undefined ? undefined : vram * 1024 };
}

function soundOf(devices: El | undefined, notes: string[]): SourceSound | undefined {
  const sounds = children(devices, 'sound');
  sounds.slice(1).forEach((s) => {
    notes.push(`extra sound device "${attr(s, 'model') ?? '?'}" ignored`);
  });
  const first = sounds[0];
  if (!first) return undefined;
  return { model: attr(first, 'model') ?? 'unknown' };
}

// ---------------------------------------------------------------------------------------------
// Other devices

/** Device kinds that are plumbing the target re-creates: dropped without a note. */
const PLUMBING = new Set(['emulator', 'controller', 'memballoon']);
/** Device kinds handled on their own. */
const HANDLED = new Set(['disk', 'interface', 'video', 'sound', 'console', 'serial', 'input']);
/** Attributes safe and useful to quote in a note (never passwords or paths). */
const DESCRIBE_ATTRS = ['type', 'model', 'mode', 'bus', 'device'];

function describe(kind: string, el: El): string {
  const attrs = DESCRIBE_ATTRS.map((a) => [a, attr(el, a)] as const)
    .filter(([, v]) => v !== undefined)
    .map(([a, v]) => ` ${a}="${v}"`)
    .join('');
  const model = attr(child(el, 'model'), 'type');
  const backend = child(el, 'backend');
  const via = attr(backend, 'type') ?? attr(backend, 'model');
  const target = attr(child(el, 'target'), 'name');
  const extra = [model && `model ${model}`, via && `backend ${via}`, target && `target ${target}`]
    .filter(Boolean)
    .join(', ');
  return `<${kind}${attrs}>${extra ? ` (${extra})` : ''}`;
}

function otherDeviceNotes(
  devices: El | undefined,
  hv: SourceHypervisor,
  notes: string[],
): string | undefined {
  let console: string | undefined;
  if (!devices) return undefined;
  for (const [kind, value] of Object.entries(devices)) {
    if (kind.startsWith('@_') || kind === '#text' || PLUMBING.has(kind)) continue;
    for (const el of asArray(value).map(asEl)) {
      if (kind === 'console' || kind === 'serial') {
        const target = child(el, 'target');
        const targetType = attr(target, 'type');
        if (kind === 'console' && hv === 'xen-pv' && (targetType ?? 'xen') === 'xen') {
          console ??= `hvc${intAttr(target, 'port') ?? 0}`;
          continue;
        }
        if ((attr(el, 'type') ?? 'pty') === 'pty') continue;
      } else if (kind === 'input') {
        if (/^(mouse|tablet|keyboard)$/.test(attr(el, 'type') ?? '')) continue;
      } else if (kind === 'audio') {
        // libvirt adds <audio type='none'/> to every QEMU domain: no backend, nothing lost
        if (attr(el, 'type') === 'none') continue;
      } else if (HANDLED.has(kind)) {
        continue;
      }
      notes.push(`unmapped device ${describe(kind, el)}`);
    }
  }
  return console;
}

// ---------------------------------------------------------------------------------------------
// Boot

function xenPvOf(
  domain: El,
  os: El | undefined,
  console: string | undefined,
  notes: string[],
): XenPvBoot {
  const x: XenPvBoot = {
    bootloader: textIn(domain, 'bootloader'),
    kernel: textIn(os, 'kernel'),
    initrd: textIn(os, 'initrd'),
    cmdline: textIn(os, 'cmdline'),
    console,
  };
  const args = textIn(domain, 'bootloader_args');
  if (args) notes.push(`xen pv bootloader arguments "${args}"`);
  if (!x.bootloader && !x.kernel) notes.push('xen pv guest with neither bootloader nor kernel');
  return x;
}

function directKernelNote(os: El | undefined, notes: string[]): void {
  const kernel = textIn(os, 'kernel');
  if (!kernel) return;
  const initrd = textIn(os, 'initrd');
  const cmdline = textIn(os, 'cmdline');
  notes.push(
    `direct kernel boot: kernel ${kernel}${initrd ? `, initrd ${initrd}` : ''}${cmdline ? `, cmdline "${cmdline}"` : ''}`,
  );
}

/** Applies `<os><boot dev>` when no device has a `<boot order>` of its own. */
function applyOsBoot(os: El | undefined, disks: SourceDisk[], notes: string[]): void {
  if (disks.some((d) => d.bootOrder !== undefined)) return;
  const devs = children(os, 'boot')
    .map((b) => attr(b, 'dev'))
    .filter((d): d is string => d !== undefined);
  if (devs.length === 0) return;
  const hd = devs.indexOf('hd');
  const first = disks[0];
  if (hd >= 0 && first) first.bootOrder = hd + 1;
  if (devs.some((d) => d !== 'hd')) notes.push(`boot devices in order: ${devs.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------

interface DeviceContext {
  hv: SourceHypervisor;
  controllers: Controllers;
  notes: string[];
  disks: SourceDisk[];
  cdroms: SourceCdrom[];
  sources: DiskSourceRef[];
}

function readDisk(d: El, i: number, ctx: DeviceContext): void {
  const { notes } = ctx;
  const device = attr(d, 'device') ?? 'disk';
  const target = child(d, 'target');
  const dev = cleanDev(attr(target, 'dev'));
  const slot = dev ?? `#${i}`;
  const what = `${device === 'cdrom' ? 'cd-rom' : device} ${slot}`;
  if (device === 'floppy') {
    const src = child(d, 'source');
    notes.push(
      `floppy ${slot} (${attr(src, 'file') ?? attr(src, 'dev') ?? 'empty'}) not carried over`,
    );
    return;
  }
  if (!dev) notes.push(`${what}: no <target dev>`);
  const bus = busOf(target, dev, what, notes);
  const order = intAttr(child(d, 'boot'), 'order');
  const source = sourceOf(d, what, notes);
  if (source === undefined) return;
  if (device === 'cdrom') {
    if (order !== undefined) notes.push(`${what}: boot order ${order}`);
    const cd: SourceCdrom = { bus, slot };
    if (source !== 'empty') {
      if (source.kind === 'block') notes.push(`${what}: host device ${source.path}`);
      else {
        cd.path = source.path;
        ctx.sources.push({
          device: 'cdrom',
          index: ctx.cdroms.length,
          kind: source.kind,
          slot,
          pool: source.pool,
          volume: source.volume,
        });
      }
    }
    ctx.cdroms.push(cd);
    return;
  }
  if (device !== 'disk' && device !== 'lun') {
    notes.push(`${what}: unknown disk device "${device}" left out`);
    return;
  }
  if (source === 'empty') {
    notes.push(`${what}: no <source>, left out`);
    return;
  }
  if (device === 'lun') notes.push(`${what}: SCSI LUN passthrough read as a disk`);
  if (has(d, 'shareable')) notes.push(`${what}: shareable`);
  if (has(d, 'transient')) notes.push(`${what}: transient`);
  const place = placeOf(child(d, 'address'), bus, dev);
  ctx.sources.push({
    device: 'disk',
    index: ctx.disks.length,
    kind: source.kind,
    slot,
    pool: source.pool,
    volume: source.volume,
  });
  ctx.disks.push({
    path: source.path,
    backingChain: backingChainOf(d),
    format: formatOf(child(d, 'driver'), ctx.hv, source.path, slot, notes),
    bus,
    controller: controllerOf(bus, place.controllerIndex ?? 0, ctx.controllers, slot, notes),
    slot,
    controllerIndex: place.controllerIndex,
    unit: place.unit,
    bootOrder: order,
    readOnly: has(d, 'readonly'),
  });
}

/** parseUntrustedXml, with the parser's own refusals (e.g. a `<__proto__>` element) named too. */
function parseXml(text: string, file: string): Record<string, unknown> {
  try {
    return parseUntrustedXml(text, file);
  } catch (e) {
    if (e instanceof MetadataError) throw e;
    throw new MetadataError(file, `XML refused: ${(e as Error).message}`, { cause: e });
  }
}

function rootOf(doc: Record<string, unknown>, file: string): El {
  const roots = Object.keys(doc);
  if (!roots.includes('domain')) {
    const found = roots[0];
    throw new MetadataError(
      file,
      found
        ? `the root element is <${found}>, expected a libvirt <domain>`
        : 'no root element, expected a libvirt <domain>',
    );
  }
  if (roots.length > 1 || Array.isArray(doc.domain)) {
    throw new MetadataError(file, 'more than one root element, expected one libvirt <domain>');
  }
  return asEl(doc.domain);
}

function vcpusOf(domain: El, file: string, notes: string[]): number | undefined {
  const raw = textIn(domain, 'vcpu');
  if (raw === undefined) return undefined;
  if (!/^[-+]?\d{1,12}$/.test(raw)) {
    throw new MetadataError(file, `<vcpu> "${raw.slice(0, 40)}" is not a whole number`);
  }
  const vcpus = Number(raw);
  const current = intAttr(child(domain, 'vcpu'), 'current');
  if (current !== undefined && current < vcpus) {
    notes.push(`${current} of ${vcpus} vcpus online: all ${vcpus} used`);
  }
  return vcpus;
}

function memoryOf(domain: El, file: string, notes: string[]): number {
  const memory = has(domain, 'memory') ? child(domain, 'memory') : undefined;
  const current = has(domain, 'currentMemory') ? child(domain, 'currentMemory') : undefined;
  const max = memory && scaledBytes(memory, 'memory', file);
  const cur = current && scaledBytes(current, 'currentMemory', file);
  if (max === undefined && cur === undefined) {
    throw new MetadataError(file, 'no <memory> element');
  }
  if (max !== undefined && cur !== undefined && cur < max) {
    notes.push(`current memory ${cur} bytes is below the maximum ${max} bytes: maximum used`);
  }
  if (has(domain, 'maxMemory')) notes.push('memory hotplug (<maxMemory>) not carried over');
  return (max ?? cur) as number;
}

/**
 * Parses libvirt domain XML `text` (read from `file`, named in every error) into a guest with
 * `origin`. The guest is not validated: the reader resolves disk paths, then calls validateGuest.
 * @throws MetadataError for hostile or malformed XML, a root other than `<domain>`, or missing
 *   or malformed name, type, memory or vcpu.
 */
export function parseDomainXml(text: string, file: string, origin: SourceOrigin): ParsedDomain {
  const domain = rootOf(parseXml(text, file), file);
  const notes: string[] = [];
  const domainType = attr(domain, 'type');
  if (!domainType) throw new MetadataError(file, '<domain> has no type attribute');
  const name = textOf(domain.name === undefined ? undefined : child(domain, 'name'))?.trim();
  if (!name) throw new MetadataError(file, '<domain> has no <name>');

  const os = child(domain, 'os');
  const osTypeEl = child(os, 'type');
  const osType = textOf(osTypeEl)?.trim() || undefined;
  const arch = attr(osTypeEl, 'arch');
  const hv = hypervisorOf(domainType, osType, notes);
  if (arch && !/^(x86_64|i[3-6]86)$/.test(arch)) notes.push(`guest architecture ${arch}`);

  const memoryBytes = memoryOf(domain, file, notes);
  const cpu = child(domain, 'cpu');
  const declaredVcpus = vcpusOf(domain, file, notes);
  const topoVcpus = children(cpu, 'topology')[0];
  const vcpus =
    declaredVcpus ??
    (topoVcpus
      ? (intAttr(topoVcpus, 'sockets') ?? 1) *
        (intAttr(topoVcpus, 'dies') ?? 1) *
        (intAttr(topoVcpus, 'clusters') ?? 1) *
        (intAttr(topoVcpus, 'cores') ?? 1) *
        (intAttr(topoVcpus, 'threads') ?? 1)
      : 1);
  const cpuTopology = topologyOf(cpu, vcpus, notes);
  cpuNote(cpu, notes);

  const rawUuid = textIn(domain, 'uuid');
  const uuid = normalizeUuid(rawUuid);
  if (rawUuid && !uuid) notes.push(`<uuid> "${rawUuid}" is not a UUID`);

  const devices = child(domain, 'devices');
  const ctx: DeviceContext = {
    hv,
    controllers: controllersOf(devices),
    notes,
    disks: [],
    cdroms: [],
    sources: [],
  };
  children(devices, 'disk').forEach((d, i) => {
    readDisk(d, i, ctx);
  });
  applyOsBoot(os, ctx.disks, notes);
  const nics = children(devices, 'interface').map((n, i) => nicOf(n, i, hv, notes));
  const video = videoOf(devices, notes);
  const sound = soundOf(devices, notes);
  const console = otherDeviceNotes(devices, hv, notes);
  const xenPv = hv === 'xen-pv' ? xenPvOf(domain, os, console, notes) : undefined;
  if (hv !== 'xen-pv') directKernelNote(os, notes);

  const guest: SourceGuest = {
    name,
    hypervisor: hv,
    firmware: firmwareOf(os, hv, arch),
    memoryBytes,
    vcpus,
    cpuTopology,
    osHint: osHintOf(child(domain, 'metadata')),
    uuid,
    disks: ctx.disks,
    cdroms: ctx.cdroms,
    nics,
    video,
    sound,
    xenPv,
    notes,
    origin,
  };
  return { guest, sources: ctx.sources, domainType };
}
