/**
 * The libvirt domain of a converted guest, as typed objects, and its XML (built with
 * fast-xml-parser's builder, never by string concatenation).
 */
import { buildXml } from '../provisioning/libvirt/domain-xml-types.js';

export const V2V_CONVERSION_NS = 'https://v2v-load.dev/xmlns/conversion/1';

export interface TargetDomainDisk {
  path: string;
  format: 'qcow2' | 'raw';
  /** libvirt target dev: vda, hda. */
  dev: string;
  bus: 'virtio' | 'ide' | 'sata' | 'scsi';
  bootOrder?: number | undefined;
}

export interface TargetDomainNic {
  kind: 'network' | 'bridge';
  source: string;
  mac?: string | undefined;
  model: 'virtio' | 'e1000' | 'rtl8139';
}

export interface CpuTopologyDef {
  sockets: number;
  cores: number;
  threads: number;
}

/** A converted guest's domain, in libvirt's words. */
export interface DomainDefinitionV2v {
  type: 'kvm' | 'qemu';
  name: string;
  uuid?: string | undefined;
  memoryKiB: number;
  vcpus: number;
  topology: CpuTopologyDef;
  arch: string;
  /** `q35` or `pc`. */
  machine: 'q35' | 'pc';
  /** UEFI firmware: the loader and the variables template. */
  uefi?: { loader: string; varsTemplate: string } | undefined;
  /** Windows keeps the RTC in local time. */
  clock: 'utc' | 'localtime';
  hyperv: boolean;
  disks: TargetDomainDisk[];
  nics: TargetDomainNic[];
  video: 'virtio' | 'vga' | 'qxl' | 'cirrus';
  rng: boolean;
  balloon: boolean;
  /** A serial console; `file` logs it (for boot checks), `pty` is the interactive default. */
  serial: { type: 'pty' } | { type: 'file'; path: string };
  /** VNC on 127.0.0.1 (never on all addresses). */
  vnc: boolean;
  /** Where the guest came from, kept in the domain's metadata. */
  origin?: { hypervisor: string; source: string; converted: string } | undefined;
}

/**
 * A valid CPU topology for any vCPU count (sockets × cores × threads = vCPUs, each a whole
 * number ≥ 1): the source's when it fits, else as many sockets of its cores (and threads) as
 * fit, else one socket of N cores.
 */
export function cpuTopology(
  vcpus: number,
  hint?: { sockets: number; cores: number; threads: number },
): CpuTopologyDef {
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  if (hint && whole(hint.sockets) && whole(hint.cores) && whole(hint.threads)) {
    const { sockets, cores, threads } = hint;
    if (sockets * cores * threads === vcpus) return { sockets, cores, threads };
    if (vcpus % (cores * threads) === 0)
      return { sockets: vcpus / (cores * threads), cores, threads };
    if (vcpus % cores === 0) return { sockets: vcpus / cores, cores, threads: 1 };
  }
  return { sockets: 1, cores: vcpus, threads: 1 };
}

type XmlNode = Record<string, unknown>;

function diskNode(d: TargetDomainDisk): XmlNode {
  const n: XmlNode = {
    '@_type': 'file',
    '@_device': 'disk',
    driver: { '@_name': 'qemu', '@_type': d.format },
    source: { '@_file': d.path },
    target: { '@_dev': d.dev, '@_bus': d.bus },
  };
  if (d.bootOrder !== undefined) n.boot = { '@_order': String(d.bootOrder) };
  return n;
}

function nicNode(n: TargetDomainNic): XmlNode {
  const node: XmlNode = {
    '@_type': n.kind,
    source: n.kind === 'network' ? { '@_network': n.source } : { '@_bridge': n.source },
  };
  if (n.mac) node.mac = { '@_address': n.mac };
  node.model = { '@_type': n.model };
  return node;
}

/** The domain XML of a converted guest. */
export function buildTargetDomainXml(def: DomainDefinitionV2v): string {
  const domain: XmlNode = { '@_type': def.type, name: def.name };
  if (def.uuid) domain.uuid = def.uuid;
  if (def.origin) {
    domain.metadata = {
      'v2v:conversion': {
        '@_xmlns:v2v': V2V_CONVERSION_NS,
        'v2v:source': {
          '@_hypervisor': def.origin.hypervisor,
          '#text': def.origin.source,
        },
        'v2v:converted': def.origin.converted,
      },
    };
  }
  domain.memory = { '@_unit': 'KiB', '#text': String(def.memoryKiB) };
  domain.currentMemory = { '@_unit': 'KiB', '#text': String(def.memoryKiB) };
  domain.vcpu = { '@_placement': 'static', '#text': String(def.vcpus) };
  const os: XmlNode = {
    type: { '@_arch': def.arch, '@_machine': def.machine, '#text': 'hvm' },
  };
  if (def.uefi) {
    os.loader = { '@_readonly': 'yes', '@_type': 'pflash', '#text': def.uefi.loader };
    os.nvram = { '@_template': def.uefi.varsTemplate };
  }
  if (!def.disks.some((d) => d.bootOrder !== undefined)) os.boot = { '@_dev': 'hd' };
  domain.os = os;
  const features: XmlNode = { acpi: '', apic: '' };
  if (def.hyperv) {
    features.hyperv = {
      '@_mode': 'custom',
      relaxed: { '@_state': 'on' },
      vapic: { '@_state': 'on' },
      spinlocks: { '@_state': 'on', '@_retries': '8191' },
    };
  }
  domain.features = features;
  const cpu: XmlNode = def.type === 'kvm' ? { '@_mode': 'host-model' } : {};
  cpu.topology = {
    '@_sockets': String(def.topology.sockets),
    '@_dies': '1',
    '@_cores': String(def.topology.cores),
    '@_threads': String(def.topology.threads),
  };
  domain.cpu = cpu;
  const clock: XmlNode = { '@_offset': def.clock };
  if (def.hyperv) clock.timer = { '@_name': 'hypervclock', '@_present': 'yes' };
  domain.clock = clock;
  domain.on_poweroff = 'destroy';
  domain.on_reboot = 'restart';
  domain.on_crash = 'restart';
  const devices: XmlNode = {};
  devices.disk = def.disks.map(diskNode);
  if (def.nics.length) devices.interface = def.nics.map(nicNode);
  devices.serial =
    def.serial.type === 'file'
      ? {
          '@_type': 'file',
          source: { '@_path': def.serial.path, '@_append': 'on' },
          target: { '@_port': '0' },
        }
      : { '@_type': 'pty', target: { '@_port': '0' } };
  devices.console = {
    '@_type': def.serial.type === 'file' ? 'file' : 'pty',
    target: { '@_type': 'serial', '@_port': '0' },
  };
  if (def.serial.type === 'file') {
    (devices.console as XmlNode).source = { '@_path': def.serial.path, '@_append': 'on' };
  }
  devices.input = { '@_type': 'tablet', '@_bus': 'usb' };
  if (def.vnc) {
    devices.graphics = {
      '@_type': 'vnc',
      '@_autoport': 'yes',
      '@_listen': '127.0.0.1',
      listen: { '@_type': 'address', '@_address': '127.0.0.1' },
    };
  }
  devices.video = { model: { '@_type': def.video } };
  if (def.rng) {
    devices.rng = {
      '@_model': 'virtio',
      backend: { '@_model': 'random', '#text': '/dev/urandom' },
    };
  }
  devices.memballoon = { '@_model': def.balloon ? 'virtio' : 'none' };
  domain.devices = devices;
  return buildXml({ domain });
}
