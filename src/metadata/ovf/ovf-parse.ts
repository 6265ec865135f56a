/**
 * OVF descriptors (DMTF DSP0243 1.x and 2.x, as ovftool, VMware Workstation, VirtualBox and
 * others write them) to the neutral {@link SourceGuest}. Pure: the XML text in, and a
 * {@link OvfSource} saying where the files the descriptor references are; nothing is read here.
 *
 * Namespace prefixes are stripped by local name (exporters use `ovf:`, `rasd:`, `vssd:`, `sasd:`,
 * `epasd:`, `vmw:`, `vbox:`, or a default namespace and no prefix at all).
 */
import * as posix from 'node:path/posix';
import { MetadataError } from '../../errors.js';
import type {
  ArchiveMember,
  DiskBus,
  DiskController,
  DiskFormat,
  Firmware,
  NicModel,
  SourceCdrom,
  SourceDisk,
  SourceGuest,
  SourceHypervisor,
  SourceNic,
  SourceOrigin,
  SourceSound,
  SourceVideo,
} from '../model.js';
import { normalizeMac, normalizeUuid } from '../validate.js';
import { asArray, attr, parseUntrustedXml, textOf } from '../xml.js';
import { checkRelativeName } from './manifest.js';

export const OVF_NAMESPACE_1 = 'http://schemas.dmtf.org/ovf/envelope/1';
export const OVF_NAMESPACE_2 = 'http://schemas.dmtf.org/ovf/envelope/2';
const VMWARE_NAMESPACE = 'http://www.vmware.com/schema/ovf';
const VIRTUALBOX_NAMESPACE = 'http://www.virtualbox.org/ovf/machine';

type El = Record<string, unknown>;

/** A `References/File`. */
export interface OvfFileRef {
  id: string;
  /** Relative to the descriptor's directory; checked (no `..`, not absolute, no URL) and normalized. */
  href: string;
  /** `ovf:size`: the file's size as stored. */
  size?: number | undefined;
  compression?: 'gzip' | undefined;
}

/** A `DiskSection/Disk`. */
export interface OvfDiskDef {
  id: string;
  fileRef?: string | undefined;
  capacityBytes?: number | undefined;
  formatUrl?: string | undefined;
  parentRef?: string | undefined;
}

/** A parsed descriptor: the envelope's tables and its one virtual system (prefixes stripped). */
export interface OvfDescriptor {
  /** Names the descriptor in messages: the `.ovf` path, or `archive.ova:member.ovf`. */
  file: string;
  version: 1 | 2;
  /** The envelope declares VMware's `vmw:` namespace. */
  vmwareNamespace: boolean;
  /** The envelope declares VirtualBox's `vbox:` namespace. */
  virtualBoxNamespace: boolean;
  files: Map<string, OvfFileRef>;
  disks: Map<string, OvfDiskDef>;
  /** The `DeploymentOptionSection` configuration in force (the default one), if any. */
  configuration?: string | undefined;
  system: El;
  /** What the envelope held that could not be mapped. */
  notes: string[];
}

/** Where a referenced file is. */
export interface OvfLocation {
  path: string;
  inArchive?: ArchiveMember | undefined;
}

/** What {@link ovfToGuest} needs to know about where the descriptor came from. */
export interface OvfSource {
  origin: SourceOrigin;
  /** The file a descriptor `href` names, or undefined when it is absent. */
  locate(href: string): OvfLocation | undefined;
  /** Where a missing file was looked for, for messages: `not found: /dir/x.vmdk`. */
  missing(href: string): string;
}

/** How a referenced file is used; a reader may need to treat the kinds differently. */
export type OvfFileRole = 'disk' | 'chain' | 'cdrom';

// ---------------------------------------------------------------- XML helpers

function localName(key: string): string {
  const i = key.indexOf(':');
  return i < 0 ? key : key.slice(i + 1);
}

/** Strips namespace prefixes from element and attribute names (xmlns declarations are kept). */
function stripPrefixes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripPrefixes);
  if (!value || typeof value !== 'object') return value;
  const out = Object.create(null) as El;
  for (const [key, v] of Object.entries(value as El)) {
    let k = key;
    if (key.startsWith('@_')) {
      if (!key.startsWith('@_xmlns')) k = `@_${localName(key.slice(2))}`;
    } else if (key !== '#text') {
      k = localName(key);
    }
    const sv = stripPrefixes(v);
    if (k in out) {
      if (k.startsWith('@_') || k === '#text') continue;
      out[k] = [...asArray(out[k]), ...asArray(sv)];
    } else {
      out[k] = sv;
    }
  }
  return out;
}

function isEl(v: unknown): v is El {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The child elements called `name` (empty elements, parsed as strings, become `{}`). */
function kids(el: El | undefined, name: string): El[] {
  if (!el) return [];
  return asArray(el[name]).map((v) => (isEl(v) ? v : (Object.create(null) as El)));
}

function kid(el: El | undefined, name: string): El | undefined {
  return kids(el, name)[0];
}

/** The trimmed text of the first child `name`, undefined when absent or empty. */
function textIn(el: El | undefined, name: string): string | undefined {
  if (!el) return undefined;
  const t = textOf(asArray(el[name])[0])?.trim();
  return t === '' ? undefined : t;
}

function attrOf(el: El | undefined, name: string): string | undefined {
  const v = attr(el, name)?.trim();
  return v === '' ? undefined : v;
}

/** A whole number (negative or huge ones too: validateGuest judges the bounds). */
function wholeNumber(text: string, what: string, file: string): number {
  if (!/^[+-]?\d+$/.test(text)) {
    throw new MetadataError(file, `${what} ${JSON.stringify(text)} is not a whole number`);
  }
  return Number(text);
}

/**
 * The multiplier of a DSP0004 programmatic unit (`byte * 2^20`, `byte`, `byte * 10^9`) or of the
 * OVF 1.0 words VirtualBox and old exporters write (`MegaBytes`, `KB`). Undefined when unknown.
 */
export function unitMultiplier(units: string): number | undefined {
  const u = units.toLowerCase().replace(/\s+/g, '');
  const words: Record<string, number> = {
    byte: 1,
    bytes: 1,
    b: 1,
    kilobytes: 2 ** 10,
    kb: 2 ** 10,
    kib: 2 ** 10,
    megabytes: 2 ** 20,
    mb: 2 ** 20,
    mib: 2 ** 20,
    gigabytes: 2 ** 30,
    gb: 2 ** 30,
    gib: 2 ** 30,
    terabytes: 2 ** 40,
    tb: 2 ** 40,
    tib: 2 ** 40,
  };
  const word = words[u];
  if (word !== undefined) return word;
  const power = /^bytes?\*(\d+)\^(\d+)$/.exec(u);
  if (power) {
    const base = Number(power[1]);
    const exp = Number(power[2]);
    if ((base === 2 && exp <= 60) || (base === 10 && exp <= 18)) return base ** exp;
    return undefined;
  }
  const factor = /^bytes?\*(\d+)$/.exec(u);
  if (factor) return Number(factor[1]);
  return undefined;
}

// ---------------------------------------------------------------- envelope

function checkHref(href: string, id: string, file: string): string {
  const checked = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(href)
    ? { refused: 'a URL' }
    : checkRelativeName(href);
  if ('refused' in checked) {
    throw new MetadataError(
      file,
      `File ${id} has href ${JSON.stringify(href)}: ${checked.refused} is refused (only files next to the OVF are read)`,
    );
  }
  return checked.name;
}

function parseReferences(env: El, file: string): Map<string, OvfFileRef> {
  const files = new Map<string, OvfFileRef>();
  for (const f of kids(kid(env, 'References'), 'File')) {
    const id = attrOf(f, 'id');
    const rawHref = attrOf(f, 'href');
    if (!id || !rawHref)
      throw new MetadataError(file, 'a References/File lacks ovf:id or ovf:href');
    if (files.has(id)) throw new MetadataError(file, `File id "${id}" is used twice`);
    if (attrOf(f, 'chunkSize') !== undefined) {
      throw new MetadataError(
        file,
        `File ${id} ("${rawHref}") is split in chunks (ovf:chunkSize): chunked files are not supported`,
        { hint: 'join the chunks with ovftool, or export again without chunking' },
      );
    }
    const compression = attrOf(f, 'compression');
    if (compression !== undefined && compression !== 'gzip' && compression !== 'identity') {
      throw new MetadataError(file, `File ${id} has unknown ovf:compression "${compression}"`);
    }
    const size = attrOf(f, 'size');
    files.set(id, {
      id,
      href: checkHref(rawHref, id, file),
      size: size === undefined ? undefined : wholeNumber(size, `File ${id} ovf:size`, file),
      compression: compression === 'gzip' ? 'gzip' : undefined,
    });
  }
  return files;
}

function parseDisks(
  env: El,
  files: Map<string, OvfFileRef>,
  file: string,
  notes: string[],
): Map<string, OvfDiskDef> {
  const disks = new Map<string, OvfDiskDef>();
  const sections = [...kids(env, 'DiskSection'), ...kids(env, 'VirtualDiskSection')];
  for (const d of sections.flatMap((s) => kids(s, 'Disk'))) {
    const id = attrOf(d, 'diskId');
    if (!id) throw new MetadataError(file, 'a DiskSection/Disk lacks ovf:diskId');
    if (disks.has(id)) throw new MetadataError(file, `disk id "${id}" is used twice`);
    const fileRef = attrOf(d, 'fileRef');
    if (fileRef !== undefined && !files.has(fileRef)) {
      throw new MetadataError(
        file,
        `Disk ${id} refers to File "${fileRef}", which is not in the References`,
      );
    }
    const capacity = attrOf(d, 'capacity');
    const unitsText = attrOf(d, 'capacityAllocationUnits') ?? 'byte';
    let capacityBytes: number | undefined;
    if (capacity !== undefined && /^\$\{.*\}$/.test(capacity)) {
      notes.push(
        `disk ${id}: capacity is the property ${capacity}, not a number: capacity unknown`,
      );
    } else if (capacity !== undefined) {
      const units = unitMultiplier(unitsText);
      if (units === undefined) {
        throw new MetadataError(
          file,
          `Disk ${id} has unknown capacityAllocationUnits "${unitsText}"`,
        );
      }
      capacityBytes = wholeNumber(capacity, `Disk ${id} capacity`, file) * units;
    }
    disks.set(id, {
      id,
      fileRef,
      capacityBytes,
      formatUrl: attrOf(d, 'format'),
      parentRef: attrOf(d, 'parentRef'),
    });
  }
  return disks;
}

function virtualSystems(el: El): El[] {
  return [
    ...kids(el, 'VirtualSystem'),
    ...kids(el, 'VirtualSystemCollection').flatMap((c) => virtualSystems(c)),
  ];
}

function defaultConfiguration(env: El, notes: string[]): string | undefined {
  const configs = kids(kid(env, 'DeploymentOptionSection'), 'Configuration');
  if (configs.length === 0) return undefined;
  const chosen = configs.find((c) => attrOf(c, 'default') === 'true') ?? configs[0];
  const id = attrOf(chosen, 'id');
  if (configs.length > 1) {
    notes.push(
      `deployment options ${configs.map((c) => attrOf(c, 'id')).join(', ')}: the default "${id}" is read`,
    );
  }
  return id;
}

/**
 * Parses and checks an OVF descriptor's envelope.
 * @param file names the descriptor in messages.
 * @throws MetadataError for broken or hostile XML (entities, DOCTYPE), a root that is not an OVF
 *   1.x/2.x Envelope, unsafe file references, dangling ids, or not exactly one VirtualSystem.
 */
export function parseOvfDescriptor(text: string, file: string): OvfDescriptor {
  const raw = parseUntrustedXml(text, file);
  const rootKey = Object.keys(raw).find((k) => localName(k) === 'Envelope');
  const rootRaw = rootKey === undefined ? undefined : raw[rootKey];
  if (rootKey === undefined || !isEl(rootRaw)) {
    throw new MetadataError(file, 'not an OVF descriptor: the root element is not an <Envelope>');
  }
  const prefix = rootKey.includes(':') ? rootKey.slice(0, rootKey.indexOf(':')) : undefined;
  const ns = attr(rootRaw, prefix === undefined ? 'xmlns' : `xmlns:${prefix}`);
  let version: 1 | 2;
  if (ns === OVF_NAMESPACE_1) version = 1;
  else if (ns === OVF_NAMESPACE_2) version = 2;
  else {
    throw new MetadataError(
      file,
      `not an OVF 1.x or 2.x descriptor: the Envelope's namespace is ${ns === undefined ? 'not declared' : JSON.stringify(ns)}`,
    );
  }
  const declared = Object.entries(rootRaw)
    .filter(([k]) => k.startsWith('@_xmlns'))
    .map(([, v]) => String(v));
  const env = stripPrefixes(rootRaw) as El;
  const notes: string[] = [];
  const files = parseReferences(env, file);
  const disks = parseDisks(env, files, file, notes);
  const systems = virtualSystems(env);
  if (systems.length !== 1) {
    throw new MetadataError(
      file,
      systems.length === 0
        ? 'no VirtualSystem in the descriptor'
        : `${systems.length} VirtualSystems in the descriptor: only one guest per OVF is supported`,
    );
  }
  if (kids(env, 'SharedDiskSection').length > 0) notes.push('SharedDiskSection not converted');
  return {
    file,
    version,
    vmwareNamespace: declared.includes(VMWARE_NAMESPACE),
    virtualBoxNamespace: declared.includes(VIRTUALBOX_NAMESPACE),
    files,
    disks,
    configuration: defaultConfiguration(env, notes),
    system: systems[0] as El,
    notes,
  };
}

// ---------------------------------------------------------------- hardware items

/** One RASD item (`Item`, `StorageItem` or `EthernetPortItem`), prefixes stripped. */
interface HwItem {
  el: El;
  id: string;
  type: number | undefined;
  subType: string | undefined;
  label: string;
}

function hardwareSection(desc: OvfDescriptor, notes: string[]): El {
  const sections = kids(desc.system, 'VirtualHardwareSection');
  const first = sections[0];
  if (!first) throw new MetadataError(desc.file, 'no VirtualHardwareSection in the VirtualSystem');
  if (sections.length > 1) {
    notes.push(`${sections.length - 1} further VirtualHardwareSection(s) not read`);
  }
  return first;
}

function hardwareItems(desc: OvfDescriptor, section: El, notes: string[]): HwItem[] {
  const els = [
    ...kids(section, 'Item'),
    ...kids(section, 'StorageItem'),
    ...kids(section, 'EthernetPortItem'),
  ];
  const items = els
    .filter((el) => {
      const configs = attrOf(el, 'configuration');
      return (
        configs === undefined ||
        desc.configuration === undefined ||
        configs.split(/\s+/).includes(desc.configuration)
      );
    })
    .map((el, i): HwItem => {
      const id = textIn(el, 'InstanceID') ?? `#${i + 1}`;
      const type = textIn(el, 'ResourceType');
      return {
        el,
        id,
        type:
          type === undefined ? undefined : wholeNumber(type, `item ${id} ResourceType`, desc.file),
        subType: textIn(el, 'ResourceSubType'),
        label: textIn(el, 'ElementName') ?? textIn(el, 'Caption') ?? `item ${id}`,
      };
    });
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.id)) notes.push(`hardware InstanceID ${it.id} is used by several items`);
    seen.add(it.id);
  }
  const num = (it: HwItem) => (/^\d+$/.test(it.id) ? Number(it.id) : Number.MAX_SAFE_INTEGER);
  return items
    .map((it, i) => ({ it, i }))
    .sort((a, b) => num(a.it) - num(b.it) || a.i - b.i)
    .map((x) => x.it);
}

/** `ovf:/disk/vmdisk1`, `/disk/vmdisk1` (VirtualBox), `ovf://disk/vmdisk1` (old exporters). */
function hostResource(text: string | undefined): { kind: 'disk' | 'file'; id: string } | undefined {
  if (text === undefined) return undefined;
  const m = /^(?:ovf:)?\/+(disk|file)\/(.+)$/.exec(text.trim());
  if (!m) return undefined;
  return { kind: m[1] as 'disk' | 'file', id: m[2] as string };
}

/**
 * The files the guest's devices use, by href: `disk` for a disk without parents, `chain` for
 * every file of a snapshot chain, `cdrom` for an ISO image.
 */
export function fileRoles(desc: OvfDescriptor): Map<string, OvfFileRole> {
  const roles = new Map<string, OvfFileRole>();
  const section = kid(desc.system, 'VirtualHardwareSection');
  if (!section) return roles;
  for (const item of hardwareItems(desc, section, [])) {
    const ref = hostResource(textIn(item.el, 'HostResource'));
    if (!ref) continue;
    if (item.type === 15 || item.type === 16) {
      const f = ref.kind === 'file' ? desc.files.get(ref.id) : undefined;
      if (f && !roles.has(f.href)) roles.set(f.href, 'cdrom');
    } else if (item.type === 17 && ref.kind === 'file') {
      const f = desc.files.get(ref.id);
      if (f) roles.set(f.href, 'disk');
    } else if (item.type === 17) {
      const top = desc.disks.get(ref.id);
      const chain: OvfDiskDef[] = [];
      const seen = new Set<string>();
      for (
        let d = top;
        d && !seen.has(d.id);
        d = d.parentRef ? desc.disks.get(d.parentRef) : undefined
      ) {
        seen.add(d.id);
        chain.push(d);
      }
      for (const d of chain) {
        const f = d.fileRef ? desc.files.get(d.fileRef) : undefined;
        if (f) roles.set(f.href, chain.length > 1 ? 'chain' : 'disk');
      }
    }
  }
  return roles;
}

// ---------------------------------------------------------------- mapping tables

interface Controller {
  bus: DiskBus;
  controller: DiskController;
  index: number;
  label: string;
}

const SCSI_MODELS: Record<string, DiskController> = {
  lsilogic: 'lsilogic',
  virtualscsi: 'pvscsi',
  pvscsi: 'pvscsi',
  buslogic: 'buslogic',
  lsilogicsas: 'lsisas1068',
  lsisas1068: 'lsisas1068',
  'virtio-scsi': 'virtio-scsi',
  virtioscsi: 'virtio-scsi',
};

const NIC_MODELS: Record<string, NicModel> = {
  vmxnet3: 'vmxnet3',
  vmxnet2: 'vmxnet2',
  vmxnet: 'vmxnet',
  e1000: 'e1000',
  e1000e: 'e1000e',
  vlance: 'vlance',
  pcnet: 'pcnet',
  virtio: 'virtio',
  'virtio-net': 'virtio',
  virtionet: 'virtio',
  rtl8139: 'rtl8139',
  // VirtualBox adapter types (vbox:Machine Adapter@type)
  am79c970a: 'pcnet',
  am79c973: 'pcnet',
  am79c960: 'pcnet',
  '82540em': 'e1000',
  '82543gc': 'e1000',
  '82545em': 'e1000',
};

function nicModel(word: string, vmware: boolean): NicModel | undefined {
  const w = word.toLowerCase();
  // VMware's "vlance" is an AMD PCnet32; ovftool writes it as PCNet32.
  if (w === 'pcnet32') return vmware ? 'vlance' : 'pcnet';
  return NIC_MODELS[w];
}

/** `ovf:format` URL (or the file's extension) to the image format. */
function diskFormat(url: string | undefined, href: string): DiskFormat | undefined {
  if (url !== undefined) {
    const u = url.toLowerCase();
    if (u.includes('vmdk')) return 'vmdk';
    if (u.includes('qcow')) return 'qcow2';
    if (u.includes('vhdx')) return 'vhdx';
    if (u.includes('vhd')) return 'vhd';
    if (u.includes('vdi')) return 'vdi';
    if (u.includes('wiki/byte') || /\braw\b/.test(u)) return 'raw';
  }
  const ext = posix.extname(href.replace(/\.gz$/i, '')).toLowerCase();
  const byExt: Record<string, DiskFormat> = {
    '.vmdk': 'vmdk',
    '.qcow2': 'qcow2',
    '.qcow': 'qcow2',
    '.vhd': 'vhd',
    '.vhdx': 'vhdx',
    '.vdi': 'vdi',
    '.img': 'raw',
    '.raw': 'raw',
  };
  return byExt[ext];
}

// ---------------------------------------------------------------- the guest

interface Settings {
  values: Map<string, string>;
}

/** VirtualHardwareSection-level `vmw:Config` and `vmw:ExtraConfig` key/value pairs. */
function vmwareSettings(section: El): Settings {
  const values = new Map<string, string>();
  for (const c of [...kids(section, 'Config'), ...kids(section, 'ExtraConfig')]) {
    const key = attrOf(c, 'key');
    if (key !== undefined) values.set(key, attr(c, 'value') ?? '');
  }
  return { values };
}

function itemSetting(item: HwItem, key: string): string | undefined {
  const setting = kids(item.el, 'Config').find((c) => attrOf(c, 'key') === key);
  return setting === undefined ? undefined : attr(setting, 'value');
}

function detectHypervisor(
  desc: OvfDescriptor,
  systemType: string | undefined,
  vbox: El | undefined,
  notes: string[],
): SourceHypervisor {
  const type = systemType ?? '';
  if (vbox || /^virtualbox/i.test(type)) {
    notes.push(`exported by VirtualBox (${systemType ?? 'vbox:Machine'})`);
    return 'unknown';
  }
  if (/\bvmx-\d+/i.test(type) || desc.vmwareNamespace) return 'vmware';
  if (/\bhvm-/i.test(type)) return 'xen-fv';
  if (/\bxen-/i.test(type)) return 'xen-pv';
  if (/\bkvm\b|qemu/i.test(type)) return 'kvm';
  notes.push(
    systemType === undefined
      ? 'no VirtualSystemType: hypervisor unknown'
      : `VirtualSystemType "${systemType}" not recognised: hypervisor unknown`,
  );
  return 'unknown';
}

function detectFirmware(
  settings: Settings,
  vbox: El | undefined,
  hypervisor: SourceHypervisor,
  notes: string[],
): Firmware {
  const fw = settings.values.get('firmware');
  if (fw !== undefined) {
    if (fw.toLowerCase() === 'efi') return 'uefi';
    if (fw.toLowerCase() === 'bios') return 'bios';
    notes.push(`unknown firmware "${fw}"`);
    return 'unknown';
  }
  if (vbox) {
    const type = attrOf(kid(kid(vbox, 'Hardware'), 'Firmware'), 'type');
    if (type === undefined || /^bios$/i.test(type)) return 'bios';
    if (/^efi/i.test(type)) return 'uefi';
    notes.push(`unknown VirtualBox firmware "${type}"`);
    return 'unknown';
  }
  return hypervisor === 'vmware' ? 'bios' : 'unknown';
}

const MAPPED_SETTINGS = new Set([
  'firmware',
  'bootOptions.efiSecureBootEnabled',
  'uefi.secureBoot.enabled',
  'uuid.bios',
  'nvram',
]);

class GuestBuilder {
  readonly notes: string[];
  readonly file: string;
  private readonly controllers = new Map<string, Controller>();
  private readonly controllerItems = new Set<HwItem>();
  readonly disks: SourceDisk[] = [];
  readonly cdroms: SourceCdrom[] = [];
  readonly nics: SourceNic[] = [];
  video: SourceVideo | undefined;
  sound: SourceSound | undefined;
  vcpus: number | undefined;
  cores: number | undefined;
  memoryBytes: number | undefined;
  private readonly usedDisks = new Set<string>();
  /** NICs without a ResourceSubType, by index, with their label. */
  readonly untypedNics = new Map<number, string>();

  constructor(
    private readonly desc: OvfDescriptor,
    private readonly src: OvfSource,
    private readonly hypervisor: SourceHypervisor,
    notes: string[],
  ) {
    this.notes = notes;
    this.file = desc.file;
  }

  private int(item: HwItem, field: string): number | undefined {
    const t = textIn(item.el, field);
    return t === undefined ? undefined : wholeNumber(t, `"${item.label}" ${field}`, this.file);
  }

  /** First pass: the controllers, so devices can find their Parent whatever the order. */
  addControllers(items: HwItem[]): void {
    const perBus = new Map<DiskBus, number>();
    for (const item of items) {
      const c = this.controllerOf(item);
      if (!c) continue;
      // Controllers number themselves in Address (VMware, VirtualBox); otherwise count them.
      const address = textIn(item.el, 'Address');
      const index =
        address !== undefined && /^\d{1,4}$/.test(address)
          ? Number(address)
          : (perBus.get(c.bus) ?? 0);
      perBus.set(c.bus, Math.max(perBus.get(c.bus) ?? 0, index + 1));
      this.controllerItems.add(item);
      if (!this.controllers.has(item.id))
        this.controllers.set(item.id, { ...c, index, label: item.label });
    }
  }

  private controllerOf(item: HwItem): { bus: DiskBus; controller: DiskController } | undefined {
    const sub = item.subType?.toLowerCase();
    if (sub === 'vmware.nvme.controller' || (item.type === 20 && sub?.includes('nvme'))) {
      return { bus: 'nvme', controller: 'nvme' };
    }
    switch (item.type) {
      case 5:
        return { bus: 'ide', controller: 'ide' };
      case 6: {
        const model = sub === undefined ? undefined : SCSI_MODELS[sub];
        if (model === undefined) {
          this.notes.push(
            sub === undefined
              ? `SCSI controller "${item.label}" has no ResourceSubType: model unknown`
              : `unknown SCSI controller model "${item.subType}" on "${item.label}"`,
          );
        }
        return { bus: 'scsi', controller: model ?? 'unknown' };
      }
      case 20:
        if (sub !== undefined && !/ahci|sata/.test(sub)) {
          this.notes.push(
            `unknown storage controller "${item.subType}" on "${item.label}": taken as SATA`,
          );
        }
        return { bus: 'sata', controller: 'sata' };
      default:
        return undefined;
    }
  }

  private parentOf(item: HwItem): { controller: Controller | undefined } {
    const parent = textIn(item.el, 'Parent');
    const controller = parent === undefined ? undefined : this.controllers.get(parent);
    if (!controller) {
      this.notes.push(
        parent === undefined
          ? `"${item.label}" has no Parent controller: bus unknown`
          : `"${item.label}" has Parent ${parent}, which is not a disk controller: bus unknown`,
      );
    }
    return { controller };
  }

  private locateOrThrow(file: OvfFileRef, what: string): OvfLocation {
    const loc = this.src.locate(file.href);
    if (!loc) {
      throw new MetadataError(
        this.file,
        `${what} file "${file.href}" (File ${file.id}) is missing: ${this.src.missing(file.href)}`,
      );
    }
    return loc;
  }

  private fileOf(id: string, item: HwItem): OvfFileRef {
    const f = this.desc.files.get(id);
    if (!f) {
      throw new MetadataError(
        this.file,
        `"${item.label}" refers to File "${id}", which is not in the References`,
      );
    }
    return f;
  }

  addDisk(item: HwItem): void {
    const host = textIn(item.el, 'HostResource');
    const ref = hostResource(host);
    if (!ref) {
      throw new MetadataError(
        this.file,
        host === undefined
          ? `disk "${item.label}" has no HostResource: which disk it is is unknown`
          : `disk "${item.label}" has HostResource "${host}", expected ovf:/disk/ID or ovf:/file/ID`,
      );
    }
    const { controller } = this.parentOf(item);
    let file: OvfFileRef;
    let capacityBytes: number | undefined;
    let formatUrl: string | undefined;
    const backingChain: string[] = [];
    if (ref.kind === 'file') {
      file = this.fileOf(ref.id, item);
    } else {
      const def = this.desc.disks.get(ref.id);
      if (!def) {
        throw new MetadataError(
          this.file,
          `"${item.label}" refers to disk "${ref.id}", which is not in the DiskSection`,
        );
      }
      if (this.usedDisks.has(def.id)) {
        throw new MetadataError(this.file, `disk "${def.id}" is attached twice ("${item.label}")`);
      }
      this.usedDisks.add(def.id);
      if (def.fileRef === undefined) {
        this.notes.push(
          `"${item.label}" (ovf:/disk/${def.id}) has no file: a blank disk the importer would create; not converted`,
        );
        return;
      }
      file = this.fileOf(def.fileRef, item);
      capacityBytes = def.capacityBytes;
      formatUrl = def.formatUrl;
      const seen = new Set([def.id]);
      for (let p = def.parentRef; p !== undefined; ) {
        const parent = this.desc.disks.get(p);
        if (!parent) {
          throw new MetadataError(
            this.file,
            `disk "${ref.id}" has parentRef "${p}", which is not in the DiskSection`,
          );
        }
        if (seen.has(parent.id)) {
          throw new MetadataError(
            this.file,
            `disk "${ref.id}": the parentRef chain loops at "${parent.id}"`,
          );
        }
        seen.add(parent.id);
        this.usedDisks.add(parent.id);
        if (parent.fileRef === undefined) {
          throw new MetadataError(
            this.file,
            `disk "${parent.id}" (parent of "${ref.id}") has no file`,
          );
        }
        backingChain.push(
          this.locateOrThrow(this.fileOf(parent.fileRef, item), 'backing disk').path,
        );
        p = parent.parentRef;
      }
    }
    const loc = this.locateOrThrow(file, 'disk');
    let format = diskFormat(formatUrl, file.href);
    if (format === undefined) {
      this.notes.push(
        `"${item.label}": disk format ${formatUrl === undefined ? `of "${file.href}"` : `"${formatUrl}"`} not recognised`,
      );
      format = 'unknown';
    }
    this.disks.push({
      path: loc.path,
      backingChain,
      format,
      bus: controller?.bus ?? 'unknown',
      controller: controller?.controller ?? 'unknown',
      slot: `ovf:/${ref.kind}/${ref.id}`,
      controllerIndex: controller?.index,
      unit: this.int(item, 'AddressOnParent'),
      readOnly: false,
      capacityBytes,
      compression: file.compression,
      inArchive: loc.inArchive,
    });
  }

  addCdrom(item: HwItem): void {
    const { controller } = this.parentOf(item);
    const unit = this.int(item, 'AddressOnParent');
    const slot =
      controller && unit !== undefined
        ? `${controller.bus}${controller.index}:${unit}`
        : `ovf:/item/${item.id}`;
    const host = textIn(item.el, 'HostResource');
    const ref = hostResource(host);
    let isoPath: string | undefined;
    if (ref?.kind === 'file') {
      const f = this.fileOf(ref.id, item);
      const loc = this.src.locate(f.href);
      if (loc) isoPath = loc.path;
      else
        this.notes.push(
          `ISO "${f.href}" of "${item.label}" is missing (${this.src.missing(f.href)}): drive left empty`,
        );
    } else if (host !== undefined) {
      this.notes.push(
        `"${item.label}" has HostResource "${host}", not an ISO file: drive left empty`,
      );
    }
    this.cdroms.push({ bus: controller?.bus ?? 'unknown', slot, path: isoPath });
  }

  addNic(item: HwItem): void {
    let model: NicModel = 'unknown';
    if (item.subType === undefined) {
      // VirtualBox writes no subtype for virtio: its vbox:Machine section may still say.
      this.untypedNics.set(this.nics.length, item.label);
    } else {
      const m = nicModel(item.subType, this.hypervisor === 'vmware');
      if (m === undefined)
        this.notes.push(`unknown NIC model "${item.subType}" on "${item.label}"`);
      model = m ?? 'unknown';
    }
    const address = textIn(item.el, 'Address');
    const mac = normalizeMac(address);
    if (address !== undefined && mac === undefined) {
      this.notes.push(`NIC "${item.label}" has Address "${address}", not a MAC`);
    }
    const network = textIn(item.el, 'Connection');
    this.nics.push({
      mac,
      model,
      network,
      networkKind: network === undefined ? 'unknown' : 'network',
    });
  }

  addVideo(item: HwItem): void {
    if (this.video) {
      this.notes.push(`further video card "${item.label}" not converted`);
      return;
    }
    const kb = itemSetting(item, 'videoRamSizeInKB');
    const vram = kb !== undefined && /^\d+$/.test(kb) ? Number(kb) * 1024 : undefined;
    if (this.hypervisor === 'vmware') {
      this.video = { model: 'vmvga', vramBytes: vram };
    } else {
      this.notes.push(
        `video card "${item.label}"${item.subType ? ` (${item.subType})` : ''}: model unknown`,
      );
      this.video = { model: 'unknown', vramBytes: vram };
    }
  }

  addSound(item: HwItem): void {
    if (this.sound) {
      this.notes.push(`further sound card "${item.label}" not converted`);
      return;
    }
    const model = item.subType?.replace(/^vmware\.soundcard\./i, '');
    if (model === undefined) this.notes.push(`sound card "${item.label}" has no ResourceSubType`);
    this.sound = { model: model ?? 'unknown' };
  }

  addCpu(item: HwItem): void {
    if (this.vcpus !== undefined) {
      this.notes.push(`further CPU item "${item.label}" ignored`);
      return;
    }
    this.vcpus = this.int(item, 'VirtualQuantity');
    if (this.vcpus === undefined) {
      throw new MetadataError(this.file, `CPU item "${item.label}" has no VirtualQuantity`);
    }
    const cores = textIn(item.el, 'CoresPerSocket');
    if (cores !== undefined) this.cores = wholeNumber(cores, 'CoresPerSocket', this.file);
  }

  addMemory(item: HwItem): void {
    if (this.memoryBytes !== undefined) {
      this.notes.push(`further memory item "${item.label}" ignored`);
      return;
    }
    const quantity = this.int(item, 'VirtualQuantity');
    if (quantity === undefined) {
      throw new MetadataError(this.file, `memory item "${item.label}" has no VirtualQuantity`);
    }
    let unitsText = textIn(item.el, 'AllocationUnits');
    if (unitsText === undefined) {
      this.notes.push('memory has no AllocationUnits: MiB assumed');
      unitsText = 'byte * 2^20';
    }
    const units = unitMultiplier(unitsText);
    if (units === undefined) {
      throw new MetadataError(this.file, `memory AllocationUnits "${unitsText}" not recognised`);
    }
    this.memoryBytes = quantity * units;
  }

  /** Maps one item onto the model (controllers were taken by {@link addControllers}). */
  add(item: HwItem): void {
    if (this.controllerItems.has(item)) return;
    const handlers: Record<number, (it: HwItem) => void> = {
      3: (it) => this.addCpu(it),
      4: (it) => this.addMemory(it),
      10: (it) => this.addNic(it),
      15: (it) => this.addCdrom(it),
      16: (it) => this.addCdrom(it),
      17: (it) => this.addDisk(it),
      24: (it) => this.addVideo(it),
      35: (it) => this.addSound(it),
    };
    const unconverted: Record<number, string> = {
      14: 'floppy drive',
      21: 'serial port',
      22: 'parallel port',
      23: 'USB controller',
    };
    const soundcard = item.type === 1 && /^vmware\.soundcard\./i.test(item.subType ?? '');
    const handler = soundcard
      ? (it: HwItem) => this.addSound(it)
      : item.type === undefined
        ? undefined
        : handlers[item.type];
    const kind = item.type === undefined ? undefined : unconverted[item.type];
    const sub = item.subType ? ` (${item.subType})` : '';
    if (handler) handler(item);
    else if (kind) this.notes.push(`${kind} "${item.label}"${sub} not converted`);
    else if (item.type === 1 && item.subType?.toLowerCase() === 'vmware.vmci') {
      this.notes.push(`VMCI device "${item.label}" not converted`);
    } else {
      this.notes.push(
        `hardware item "${item.label}" (ResourceType ${item.type ?? 'missing'}${item.subType ? `, ${item.subType}` : ''}) not converted`,
      );
    }
  }

  /** The disks in the DiskSection that no device uses (and that are no device's parent). */
  noteUnusedDisks(): void {
    for (const id of this.desc.disks.keys()) {
      if (!this.usedDisks.has(id)) {
        this.notes.push(`disk ${id} of the DiskSection is attached to no device: not converted`);
      }
    }
  }
}

/** VirtualBox keeps MACs (and a virtio NIC's model) only in its own `vbox:Machine` section. */
function applyVirtualBoxAdapters(vbox: El, nics: SourceNic[], notes: string[]): void {
  const adapters = kids(kid(kid(vbox, 'Hardware'), 'Network'), 'Adapter')
    .filter((a) => attrOf(a, 'enabled') === 'true')
    .sort((a, b) => Number(attrOf(a, 'slot') ?? 0) - Number(attrOf(b, 'slot') ?? 0));
  if (adapters.length === 0) return;
  if (adapters.length !== nics.length) {
    notes.push(
      `vbox:Machine lists ${adapters.length} enabled adapters for ${nics.length} NICs: MACs not taken from it`,
    );
    return;
  }
  adapters.forEach((a, i) => {
    const nic = nics[i] as SourceNic;
    nic.mac ??= normalizeMac(attrOf(a, 'MACAddress'));
    const type = attrOf(a, 'type');
    if (nic.model === 'unknown' && type !== undefined)
      nic.model = nicModel(type, false) ?? 'unknown';
  });
}

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
