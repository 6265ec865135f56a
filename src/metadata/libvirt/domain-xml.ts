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
import { parseDomainDocument } from '../../formats/libvirt-domain-xml.js';
import { attr, textOf } from '../../formats/xml.js';
import type { SourceGuest, SourceOrigin } from '../model.js';
import { normalizeUuid } from '../validate.js';
import { otherDeviceNotes, soundOf, videoOf } from './domain-devices.js';
import {
  applyOsBoot,
  controllersOf,
  type DeviceContext,
  type DiskSourceRef,
  readDisk,
} from './domain-disks.js';
import { child, children, type El, intAttr, textIn } from './domain-el.js';
import {
  directKernelNote,
  firmwareOf,
  hypervisorOf,
  osHintOf,
  xenPvOf,
} from './domain-hypervisor.js';
import { nicOf } from './domain-nics.js';
import { cpuNote, memoryOf, topologyOf, vcpusOf } from './domain-units.js';

export type { DiskSourceKind, DiskSourceRef } from './domain-disks.js';

/** The result of {@link parseDomainXml}: the guest (not yet validated) and its disk sources. */
export interface ParsedDomain {
  guest: SourceGuest;
  sources: DiskSourceRef[];
  /** `<domain type>` as written (`kvm`, `xen`, `vmware`, ...). */
  domainType: string;
}

/**
 * Parses libvirt domain XML `text` (read from `file`, named in every error) into a guest with
 * `origin`. The guest is not validated: the reader resolves disk paths, then calls validateGuest.
 * @throws MetadataError for hostile or malformed XML, a root other than `<domain>`, or missing
 *   or malformed name, type, memory or vcpu.
 */
export function parseDomainXml(text: string, file: string, origin: SourceOrigin): ParsedDomain {
  const domain: El = parseDomainDocument(text, file).domain;
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
