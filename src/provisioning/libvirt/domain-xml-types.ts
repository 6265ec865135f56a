/**
 * A typed libvirt domain definition, turned into domain XML with fast-xml-parser's XMLBuilder
 * (never by string concatenation), and the typed view of a domain's XML as libvirt reports it.
 */
import { XMLBuilder } from 'fast-xml-parser';
import { parseDomainDocument } from '../../formats/libvirt-domain-xml.js';
import { asArray, attr, textOf } from '../../formats/xml.js';

/** The domain types v2v-load defines: 'kvm' on real hosts, 'qemu' (TCG) where KVM does not work. */
export const DOMAIN_TYPES = ['kvm', 'qemu'] as const;
export type DomainType = (typeof DOMAIN_TYPES)[number];

/** What libvirt does when the guest powers off, reboots or crashes. */
export type LifecycleAction =
  | 'destroy'
  | 'restart'
  | 'preserve'
  | 'rename-restart'
  | 'coredump-destroy'
  | 'coredump-restart';

/** One disk of a {@link DomainDefinition}. */
export interface DiskDefinition {
  device: 'disk' | 'cdrom';
  /** Image file on the node. */
  source: string;
  /** Image format, e.g. qcow2 or raw. */
  format: string;
  /** Target device, e.g. vda. */
  target: string;
  bus: 'virtio' | 'sata' | 'scsi' | 'ide';
  readonly?: boolean;
}

/** One NIC of a {@link DomainDefinition}: attached to a libvirt network. */
export interface InterfaceDefinition {
  network: string;
  mac?: string;
  model?: string;
}

/** A serial port: logged to a file on the node, or a pty. */
export type SerialDefinition = { type: 'file'; path: string; append?: boolean } | { type: 'pty' };

/** A domain to define, in the words of libvirt's domain XML. */
export interface DomainDefinition {
  /** Domain type: 'kvm' on real hosts, 'qemu' (TCG) where KVM does not work. */
  type: DomainType;
  name: string;
  uuid?: string;
  title?: string;
  description?: string;
  /** Maximum memory in KiB. */
  memoryKiB: number;
  /** Current memory in KiB (default: memoryKiB). */
  currentMemoryKiB?: number;
  vcpus: number;
  os: {
    type: 'hvm';
    arch?: string;
    machine?: string;
    kernel?: string;
    initrd?: string;
    cmdline?: string;
    boot?: ('hd' | 'cdrom' | 'network')[];
  };
  features?: { acpi?: boolean; apic?: boolean };
  onPoweroff?: LifecycleAction;
  onReboot?: LifecycleAction;
  onCrash?: LifecycleAction;
  disks?: DiskDefinition[];
  interfaces?: InterfaceDefinition[];
  serials?: SerialDefinition[];
}

type XmlNode = Record<string, unknown>;

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
});

function osNode(os: DomainDefinition['os']): XmlNode {
  const type: XmlNode = { '#text': os.type };
  if (os.arch) type['@_arch'] = os.arch;
  if (os.machine) type['@_machine'] = os.machine;
  const node: XmlNode = { type };
  if (os.kernel) node.kernel = os.kernel;
  if (os.initrd) node.initrd = os.initrd;
  if (os.cmdline) node.cmdline = os.cmdline;
  if (os.boot?.length) node.boot = os.boot.map((dev) => ({ '@_dev': dev }));
  return node;
}

function diskNode(d: DiskDefinition): XmlNode {
  const node: XmlNode = {
    '@_type': 'file',
    '@_device': d.device,
    driver: { '@_name': 'qemu', '@_type': d.format },
    source: { '@_file': d.source },
    target: { '@_dev': d.target, '@_bus': d.bus },
  };
  if (d.readonly) node.readonly = '';
  return node;
}

function serialNode(s: SerialDefinition): XmlNode {
  if (s.type === 'pty') return { '@_type': 'pty' };
  const source: XmlNode = { '@_path': s.path };
  if (s.append) source['@_append'] = 'on';
  return { '@_type': 'file', source };
}

/** The domain XML of a typed definition. */
export function buildDomainXml(def: DomainDefinition): string {
  const domain: XmlNode = { '@_type': def.type, name: def.name };
  if (def.uuid) domain.uuid = def.uuid;
  if (def.title) domain.title = def.title;
  if (def.description) domain.description = def.description;
  domain.memory = { '@_unit': 'KiB', '#text': String(def.memoryKiB) };
  domain.currentMemory = {
    '@_unit': 'KiB',
    '#text': String(def.currentMemoryKiB ?? def.memoryKiB),
  };
  domain.vcpu = String(def.vcpus);
  domain.os = osNode(def.os);
  if (def.features) {
    const f: XmlNode = {};
    // An empty element: suppressEmptyNode prints <acpi/>.
    if (def.features.acpi) f.acpi = '';
    if (def.features.apic) f.apic = '';
    domain.features = f;
  }
  if (def.onPoweroff) domain.on_poweroff = def.onPoweroff;
  if (def.onReboot) domain.on_reboot = def.onReboot;
  if (def.onCrash) domain.on_crash = def.onCrash;
  const devices: XmlNode = {};
  if (def.disks?.length) devices.disk = def.disks.map(diskNode);
  if (def.interfaces?.length) {
    devices.interface = def.interfaces.map((i) => {
      const n: XmlNode = { '@_type': 'network', source: { '@_network': i.network } };
      if (i.mac) n.mac = { '@_address': i.mac };
      if (i.model) n.model = { '@_type': i.model };
      return n;
    });
  }
  if (def.serials?.length) devices.serial = def.serials.map(serialNode);
  domain.devices = devices;
  return builder.build({ domain }) as string;
}

/** Builds any element tree (attributes as `@_name`, text as `#text`) into XML. */
export function buildXml(tree: XmlNode): string {
  return builder.build(tree) as string;
}

/** A disk as libvirt reports it in the domain XML. */
export interface DomainDiskInfo {
  device: string;
  target: string | undefined;
  bus: string | undefined;
  source: string | undefined;
  format: string | undefined;
}

/** The typed view of a domain's XML (`virsh dumpxml`). */
export interface DomainDescription {
  type: string | undefined;
  /** Set while the domain runs. */
  id: number | undefined;
  name: string;
  uuid: string | undefined;
  title: string | undefined;
  description: string | undefined;
  memoryKiB: number | undefined;
  currentMemoryKiB: number | undefined;
  vcpus: number | undefined;
  os: {
    type: string | undefined;
    arch: string | undefined;
    machine: string | undefined;
    kernel: string | undefined;
    initrd: string | undefined;
    cmdline: string | undefined;
  };
  disks: DomainDiskInfo[];
  interfaces: { type: string | undefined; mac: string | undefined; source: string | undefined }[];
  /** The whole parsed tree, for everything not typed above. */
  tree: Record<string, unknown>;
}

function kib(el: unknown): number | undefined {
  const t = textOf(el);
  if (t === undefined) return undefined;
  const n = Number(t);
  const unit = (attr(el, 'unit') ?? 'KiB').toLowerCase();
  const factor: Record<string, number> = {
    b: 1 / 1024,
    bytes: 1 / 1024,
    k: 1,
    kib: 1,
    kb: 1000 / 1024,
    m: 1024,
    mib: 1024,
    g: 1024 * 1024,
    gib: 1024 * 1024,
  };
  return Math.round(n * (factor[unit] ?? 1));
}

function num(t: string | undefined): number | undefined {
  return t === undefined || t === '' ? undefined : Number(t);
}

/**
 * A domain's XML (from `source`, for messages) as a {@link DomainDescription}: the typed view
 * over the one domain XML parse ({@link parseDomainDocument}, which the metadata reader uses too).
 */
export function describeDomainXml(xml: string, source: string): DomainDescription {
  const { tree, domain: d } = parseDomainDocument(xml, source);
  const os = (d.os ?? {}) as Record<string, unknown>;
  const devices = (d.devices ?? {}) as Record<string, unknown>;
  const id = attr(d, 'id');
  return {
    type: attr(d, 'type'),
    id: id === undefined ? undefined : Number(id),
    name: textOf(d.name) ?? '',
    uuid: textOf(d.uuid),
    title: textOf(d.title),
    description: textOf(d.description),
    memoryKiB: kib(d.memory),
    currentMemoryKiB: kib(d.currentMemory),
    vcpus: num(textOf(d.vcpu)),
    os: {
      type: textOf(os.type),
      arch: attr(os.type, 'arch'),
      machine: attr(os.type, 'machine'),
      kernel: textOf(os.kernel),
      initrd: textOf(os.initrd),
      cmdline: textOf(os.cmdline),
    },
    disks: asArray(devices.disk as unknown[]).map((disk) => {
      const src = (disk as Record<string, unknown>).source;
      return {
        device: attr(disk, 'device') ?? 'disk',
        target: attr((disk as Record<string, unknown>).target, 'dev'),
        bus: attr((disk as Record<string, unknown>).target, 'bus'),
        source: attr(src, 'file') ?? attr(src, 'dev') ?? attr(src, 'name'),
        format: attr((disk as Record<string, unknown>).driver, 'type'),
      };
    }),
    interfaces: asArray(devices.interface as unknown[]).map((i) => {
      const src = (i as Record<string, unknown>).source;
      return {
        type: attr(i, 'type'),
        mac: attr((i as Record<string, unknown>).mac, 'address'),
        source: attr(src, 'network') ?? attr(src, 'bridge') ?? attr(src, 'dev'),
      };
    }),
    tree,
  };
}
