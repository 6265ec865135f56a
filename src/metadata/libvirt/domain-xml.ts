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
import type { SourceGuest, SourceOrigin } from '../model.js';
import { normalizeUuid } from '../validate.js';
import { attr, parseUntrustedXml, textOf } from '../../formats/xml.js';
import { otherDeviceNotes, soundOf, videoOf } from './domain-devices.js';
import {
  applyOsBoot,
  controllersOf,
  type DeviceContext,
  type DiskSourceRef,
  readDisk,
} from './domain-disks.js';
import { asEl, child, children, type El, intAttr, textIn } from './domain-el.js';
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
