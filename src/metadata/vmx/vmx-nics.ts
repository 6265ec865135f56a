/**
 * Network adapters of a .vmx: each present `ethernetN`, with its model, MAC address and the
 * network or port group it is plugged into.
 */
import type { NicModel, SourceNic } from '../model.js';
import { normalizeMac } from '../validate.js';
import { printable, type VmxFile } from './parse-vmx.js';

const NIC_MODELS: Record<string, NicModel> = {
  vmxnet3: 'vmxnet3',
  vmxnet2: 'vmxnet2',
  vmxnet: 'vmxnet',
  e1000: 'e1000',
  e1000e: 'e1000e',
  vlance: 'vlance',
};

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
  // virt-v2v names a NIC without networkName after its slot ("ethernet0"), so that
  // `--network ethernet0:br0` mappings written for it work here too; the Workstation
  // connection type (bridged, nat, hostonly, custom VMnetN, pvn) is kept as a note.
  const conn = vmx.str(`${ns}.connectionType`)?.trim().toLowerCase();
  if (conn === undefined || conn === '') {
    notes.add(
      `${ns} names no network (no networkName, no connectionType): network named "${ns}" as virt-v2v does`,
    );
    return { network: ns, networkKind: 'network' };
  }
  let kept = `"${printable(conn)}"`;
  if (conn === 'custom') {
    const vnet = vmx.str(`${ns}.vnet`);
    if (vnet) kept += ` (vnet "${printable(vnet)}")`;
  } else if (conn === 'pvn') {
    const pvn = vmx.str(`${ns}.pvnID`);
    if (pvn) kept += ` (pvnID "${printable(pvn)}")`;
  } else if (!['bridged', 'nat', 'hostonly'].includes(conn)) {
    notes.add(`${ns}: unknown connectionType "${printable(conn)}"`);
  }
  notes.add(
    `${ns}: no networkName; Workstation connectionType ${kept}: network named "${ns}" as virt-v2v does`,
  );
  return { network: ns, networkKind: 'network' };
}

/** ethernetN NICs in index order. */
export function readNics(vmx: VmxFile, notes: Set<string>): SourceNic[] {
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
