/**
 * The domain of a load (VCL's generate_domain_xml) as typed objects ({@link DomainDefinitionV2v}
 * of HVTarget::KVM), then XML, with the load's record in the domain's metadata: image name,
 * id and revision, computer, reservation, and whether post_load ran. Disk bus and NIC model
 * come from the image's recorded domain XML (kept beside the master), else virtio; a recorded
 * direct kernel boot (kernel, initrd, cmdline) is kept.
 */
import { createHash } from 'node:crypto';
import { asArray, attr, parseUntrustedXml, textOf } from '../formats/xml.js';
import {
  buildTargetDomainXml,
  cpuTopology,
  type DomainDefinitionV2v,
  type TargetDomainDisk,
  type TargetDomainNic,
} from '../hvtarget/domain.js';
import { V2V_METADATA_NS, V2V_METADATA_PREFIX } from './libvirt/domain.js';
import { buildXml } from './libvirt/domain-xml-types.js';
import type { Reservation } from './reservation.js';

/** What an image's recorded domain XML says about its virtual hardware. */
export interface RecordedHardware {
  /** How many disks (device `disk`) the image has: one master file each. */
  diskCount?: number | undefined;
  diskBus?: TargetDomainDisk['bus'] | undefined;
  nicModel?: TargetDomainNic['model'] | undefined;
  machine?: 'q35' | 'pc' | undefined;
  topology?: { sockets: number; cores: number; threads: number } | undefined;
  kernelBoot?:
    | { kernel: string; initrd?: string | undefined; cmdline?: string | undefined }
    | undefined;
}

const BUSES = ['virtio', 'ide', 'sata', 'scsi'] as const;
const MODELS = ['virtio', 'e1000', 'rtl8139'] as const;

/** Reads the hardware an image's recorded domain XML (`source`, for messages) describes. */
export function recordedHardware(xml: string, source: string): RecordedHardware {
  const tree = parseUntrustedXml(xml, source);
  const d = (tree.domain ?? {}) as Record<string, unknown>;
  const devices = (d.devices ?? {}) as Record<string, unknown>;
  const os = (d.os ?? {}) as Record<string, unknown>;
  const disks = asArray(devices.disk as unknown[]).filter(
    (x) => (attr(x, 'device') ?? 'disk') === 'disk',
  );
  const disk = disks[0];
  const bus = attr((disk as Record<string, unknown> | undefined)?.target, 'bus');
  const nic = asArray(devices.interface as unknown[])[0] as Record<string, unknown> | undefined;
  const model = attr(nic?.model, 'type');
  const machine = attr(os.type, 'machine') ?? '';
  const topo = (d.cpu as Record<string, unknown> | undefined)?.topology;
  const kernel = textOf(os.kernel);
  const n = (s: string | undefined) => (s === undefined ? Number.NaN : Number(s));
  return {
    diskCount: disks.length || undefined,
    diskBus: (BUSES as readonly string[]).includes(bus ?? '')
      ? (bus as TargetDomainDisk['bus'])
      : undefined,
    nicModel: (MODELS as readonly string[]).includes(model ?? '')
      ? (model as TargetDomainNic['model'])
      : undefined,
    machine: /q35/.test(machine) ? 'q35' : /pc|i440fx/.test(machine) ? 'pc' : undefined,
    topology: topo
      ? {
          sockets: n(attr(topo, 'sockets')),
          cores: n(attr(topo, 'cores')),
          threads: n(attr(topo, 'threads')),
        }
      : undefined,
    kernelBoot: kernel
      ? { kernel, initrd: textOf(os.initrd), cmdline: textOf(os.cmdline) }
      : undefined,
  };
}

/** A MAC of the KVM OUI 52:54:00, the same for a computer's NIC on every load. */
export function generatedMac(computer: string, nic: number): string {
  const h = createHash('sha256').update(`${computer}/${nic}`).digest();
  return `52:54:00:${[h[0], h[1], h[2]].map((b) => (b ?? 0).toString(16).padStart(2, '0')).join(':')}`;
}

const DEV_PREFIX: Record<TargetDomainDisk['bus'], string> = {
  virtio: 'vd',
  ide: 'hd',
  sata: 'sd',
  scsi: 'sd',
};

/** What {@link generateDomainDefinition} needs besides the reservation. */
export interface DomainInputs {
  name: string;
  type: 'kvm' | 'qemu';
  disks: { path: string; format: 'qcow2' }[];
  consoleLog: string;
  recorded: RecordedHardware;
}

/** The typed domain of a load. */
export function generateDomainDefinition(res: Reservation, inp: DomainInputs): DomainDefinitionV2v {
  const bus = inp.recorded.diskBus ?? 'virtio';
  const model = inp.recorded.nicModel ?? 'virtio';
  const nics: TargetDomainNic[] = [];
  const switches = [res.vmhost.virtualSwitch0, res.vmhost.virtualSwitch1];
  const macs = [res.computer.eth0Mac, res.computer.eth1Mac];
  switches.forEach((sw, i) => {
    if (sw)
      nics.push({
        kind: 'network',
        source: sw,
        mac: macs[i] ?? generatedMac(res.computer.shortName, i),
        model,
      });
  });
  const vcpus = res.image.minCpus;
  return {
    type: inp.type,
    name: inp.name,
    memoryKiB: res.image.minRamMiB * 1024,
    vcpus,
    topology: cpuTopology(vcpus, inp.recorded.topology),
    arch: 'x86_64',
    // IDE needs the i440fx machine; q35 has no IDE controller.
    machine: bus === 'ide' ? 'pc' : (inp.recorded.machine ?? 'q35'),
    clock: res.image.osType === 'windows' ? 'localtime' : 'utc',
    hyperv: res.image.osType === 'windows',
    disks: inp.disks.map((d, i) => ({
      path: d.path,
      format: d.format,
      dev: `${DEV_PREFIX[bus]}${String.fromCharCode(97 + i)}`,
      bus,
      ...(i === 0 && !inp.recorded.kernelBoot ? { bootOrder: 1 } : {}),
    })),
    nics,
    video: 'vga',
    rng: false,
    balloon: true,
    serial: { type: 'file', path: inp.consoleLog },
    vnc: true,
  };
}

/** The load's record in the domain's metadata. */
export interface LoadRecord {
  imageId: number;
  imageName: string;
  imageRevision: number;
  computerId: number;
  computerName: string;
  reservationId: number;
  loadedAt: string;
  /** When post_load saw the guest up; undefined until then. */
  postLoadAt?: string | undefined;
}

/** The record as the key → text of {@link Domain.setMetadata}. */
export function loadRecordValues(r: LoadRecord): Record<string, string> {
  const out: Record<string, string> = {
    imageId: String(r.imageId),
    imageName: r.imageName,
    imageRevision: String(r.imageRevision),
    computerId: String(r.computerId),
    computerName: r.computerName,
    reservationId: String(r.reservationId),
    loadedAt: r.loadedAt,
  };
  if (r.postLoadAt) out.postLoadAt = r.postLoadAt;
  return out;
}

/** The record from {@link Domain.getMetadata}'s key → text; undefined when it is not one. */
export function loadRecordFrom(values: Record<string, string> | undefined): LoadRecord | undefined {
  if (!values?.imageName || values.imageRevision === undefined) return undefined;
  return {
    imageId: Number(values.imageId),
    imageName: values.imageName,
    imageRevision: Number(values.imageRevision),
    computerId: Number(values.computerId),
    computerName: values.computerName ?? '',
    reservationId: Number(values.reservationId),
    loadedAt: values.loadedAt ?? '',
    postLoadAt: values.postLoadAt || undefined,
  };
}

/** The domain XML of a typed definition, with the load's record in its metadata. */
export function buildLoadDomainXml(
  def: DomainDefinitionV2v,
  record: LoadRecord,
  kernelBoot?: RecordedHardware['kernelBoot'],
): string {
  const base = buildTargetDomainXml(def);
  const tree = parseUntrustedXml(base, 'generated domain XML');
  const domain = tree.domain as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(domain)) {
    out[k] = v;
    if (k === 'uuid' || (k === 'name' && !('uuid' in domain))) {
      out.metadata = {
        [`${V2V_METADATA_PREFIX}:provisioning`]: {
          [`@_xmlns:${V2V_METADATA_PREFIX}`]: V2V_METADATA_NS,
          ...Object.fromEntries(
            Object.entries(loadRecordValues(record)).map(([k, v]) => [
              `${V2V_METADATA_PREFIX}:${k}`,
              v,
            ]),
          ),
        },
      };
    }
    if (k === 'os' && kernelBoot) {
      const os = { ...(v as Record<string, unknown>) };
      delete os.boot;
      os.kernel = kernelBoot.kernel;
      if (kernelBoot.initrd) os.initrd = kernelBoot.initrd;
      if (kernelBoot.cmdline) os.cmdline = kernelBoot.cmdline;
      out[k] = os;
    }
  }
  return buildXml({ domain: out });
}
