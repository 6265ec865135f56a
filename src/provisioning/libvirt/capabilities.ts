/** The host's capabilities (`virsh capabilities`): which domain types and machines it offers. */
import { asArray, attr, parseUntrustedXml, textOf } from '../../formats/xml.js';

/** One guest kind the host can run: an OS type on an architecture. */
export interface GuestCapability {
  osType: string;
  arch: string;
  /** The emulator binary. */
  emulator: string | undefined;
  /** Domain types offered, e.g. ['qemu', 'kvm']. */
  domainTypes: string[];
  /** Machine types, canonical names and aliases, e.g. ['pc-i440fx-7.2', 'pc', 'q35', ...]. */
  machines: string[];
}

/** What `virsh capabilities` reports, typed. */
export interface HostCapabilities {
  hostUuid: string | undefined;
  hostArch: string | undefined;
  guests: GuestCapability[];
}

type El = Record<string, unknown>;

function machinesOf(arch: El): string[] {
  const out: string[] = [];
  for (const m of asArray(arch.machine as unknown[])) {
    const name = textOf(m);
    if (name && !out.includes(name)) out.push(name);
    const canonical = attr(m, 'canonical');
    if (canonical && !out.includes(canonical)) out.push(canonical);
  }
  return out;
}

/** Parses `virsh capabilities` XML. */
export function parseCapabilities(xml: string, source = 'virsh capabilities'): HostCapabilities {
  const tree = parseUntrustedXml(xml, source);
  const caps = (tree.capabilities ?? {}) as El;
  const host = (caps.host ?? {}) as El;
  const cpu = (host.cpu ?? {}) as El;
  return {
    hostUuid: textOf(host.uuid),
    hostArch: textOf(cpu.arch),
    guests: asArray(caps.guest as unknown[]).map((g) => {
      const guest = g as El;
      const arch = (guest.arch ?? {}) as El;
      const machines = machinesOf(arch);
      for (const d of asArray(arch.domain as unknown[])) {
        for (const m of machinesOf(d as El)) if (!machines.includes(m)) machines.push(m);
      }
      return {
        osType: textOf(guest.os_type) ?? '',
        arch: attr(arch, 'name') ?? '',
        emulator: textOf(arch.emulator),
        domainTypes: asArray(arch.domain as unknown[])
          .map((d) => attr(d, 'type'))
          .filter((t): t is string => t !== undefined),
        machines,
      };
    }),
  };
}
