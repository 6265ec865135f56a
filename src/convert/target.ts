/**
 * The target layout: which bus each source disk lands on, the name the guest will see it by,
 * the NIC models and networks. Pure functions of the source model and the options, so the
 * device remapping and the domain XML always agree.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';
import type { SourceDisk, SourceGuest, SourceNic } from '../metadata/model.js';

export interface TargetDisk {
  source: SourceDisk;
  /** The name the source guest knew it by (`sda`, `hdb`, `xvda`, `nvme0n1`). */
  sourceDev: string;
  /** The name the converted guest will see (`vda`; `sda` on IDE with libata). */
  guestDev: string;
  /** libvirt's `<target dev>` (`vda`, `hda`). */
  xmlDev: string;
  bus: 'virtio' | 'ide';
  /** The output image. */
  output: string;
  outputFormat: 'qcow2' | 'raw';
}

export interface TargetNic {
  source: SourceNic;
  mac: string;
  model: 'virtio' | 'e1000';
  kind: 'network' | 'bridge';
  /** libvirt network or host bridge name. */
  network: string;
}

export interface TargetLayout {
  name: string;
  disks: TargetDisk[];
  nics: TargetNic[];
  /** Source device name → target device name, for remapping inside the guest. */
  deviceMap: Record<string, string>;
}

/**
 * A MAC for a NIC the source gave none: KVM's OUI 52:54:00 and three bytes from the guest name
 * and NIC index, so a rerun gives the same address (the guest's interface pin depends on it).
 */
export function generatedMac(name: string, index: number): string {
  const h = createHash('sha256').update(`${name}\0${index}`).digest();
  return [
    '52',
    '54',
    '00',
    ...[...h.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0')),
  ].join(':');
}

/** `a`..`z`, `aa`.. as Linux names disks. */
export function diskLetters(index: number): string {
  let n = index;
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return s;
}

/** The names the source guest used for its disks, in the order of `disks`. */
export function sourceDeviceNames(disks: readonly SourceDisk[]): string[] {
  let sd = 0;
  let xvd = 0;
  let vd = 0;
  return disks.map((d) => {
    // Libvirt sources name the device the guest saw.
    if (/^(x?vd|[sh]d)[a-z]+$/.test(d.slot)) return d.slot;
    switch (d.bus) {
      case 'ide':
        return `hd${diskLetters(2 * (d.controllerIndex ?? 0) + (d.unit ?? 0))}`;
      case 'xen':
        return `xvd${diskLetters(xvd++)}`;
      case 'virtio':
        return `vd${diskLetters(vd++)}`;
      case 'nvme':
        return `nvme${d.controllerIndex ?? 0}n${(d.unit ?? 0) + 1}`;
      default:
        return `sd${diskLetters(sd++)}`;
    }
  });
}

/** A `--network in:out` / `--bridge in:out` mapping. */
export interface NetworkMapping {
  kind: 'network' | 'bridge';
  /** The source network name, or undefined for the default mapping (`--network out`). */
  from: string | undefined;
  to: string;
}

/** Parses `in:out` or `out` (the default for every source network). */
export function parseNetworkMapping(raw: string, kind: 'network' | 'bridge'): NetworkMapping {
  const i = raw.lastIndexOf(':');
  const from = i >= 0 ? raw.slice(0, i) : undefined;
  const to = i >= 0 ? raw.slice(i + 1) : raw;
  if (!to || from === '') {
    throw new UsageError(`--${kind} ${raw}: expected IN:OUT or OUT`, {
      hint: `e.g. --${kind} "VM Network:default"`,
    });
  }
  return { kind, from, to };
}

function mapNetwork(nic: SourceNic, index: number, maps: readonly NetworkMapping[]) {
  const names = [nic.network, `ethernet${index}`].filter(Boolean);
  const hit =
    maps.find((m) => m.from !== undefined && names.includes(m.from)) ??
    maps.find((m) => m.from === undefined);
  return hit
    ? { kind: hit.kind, network: hit.to }
    : { kind: 'network' as const, network: 'default' };
}

export interface LayoutOptions {
  outputDir: string;
  outputFormat: 'qcow2' | 'raw';
  virtio: boolean;
  networks: readonly NetworkMapping[];
  /** Output name (default: the source's). */
  name?: string | undefined;
}

/** The target layout of a source guest. */
export function targetLayout(source: SourceGuest, opts: LayoutOptions): TargetLayout {
  const name = opts.name ?? source.name;
  const disks = source.disks;
  if (!opts.virtio && disks.length > 4) {
    throw new UsageError(
      `--no-virtio: the guest has ${disks.length} disks but IDE takes at most 4`,
      { hint: 'convert with virtio' },
    );
  }
  const srcNames = sourceDeviceNames(disks);
  const ext = opts.outputFormat === 'qcow2' ? 'qcow2' : 'img';
  const tdisks: TargetDisk[] = disks.map((d, i) => {
    const letter = diskLetters(i);
    return {
      source: d,
      sourceDev: srcNames[i] as string,
      guestDev: opts.virtio ? `vd${letter}` : `sd${letter}`,
      xmlDev: opts.virtio ? `vd${letter}` : `hd${letter}`,
      bus: opts.virtio ? 'virtio' : 'ide',
      output: `${opts.outputDir}/${name}-sd${letter}.${ext}`,
      outputFormat: opts.outputFormat,
    };
  });
  const deviceMap: Record<string, string> = {};
  for (const d of tdisks) if (d.sourceDev !== d.guestDev) deviceMap[d.sourceDev] = d.guestDev;
  // Kernels with libata (2.6.19 on) name IDE disks sda.. rather than hda..: a guest whose disks
  // are all on IDE may know them either way, so both names are mapped. (With SCSI or SATA disks
  // beside them, the sd order depends on driver load order: not guessed.)
  if (tdisks.length && tdisks.every((d) => /^hd[a-z]+$/.test(d.sourceDev))) {
    tdisks.forEach((d, i) => {
      const libata = `sd${diskLetters(i)}`;
      if (libata !== d.guestDev) deviceMap[libata] = d.guestDev;
    });
  }
  // A Xen HVM guest with PV drivers sees its emulated disks as xvda.. (the IDE ones unplugged).
  if (source.hypervisor === 'xen-fv') {
    tdisks.forEach((d, i) => {
      const pv = `xvd${diskLetters(i)}`;
      if (!(pv in deviceMap) && pv !== d.guestDev) deviceMap[pv] = d.guestDev;
    });
  }
  const nics: TargetNic[] = source.nics.map((n, i) => ({
    source: n,
    mac: n.mac ?? generatedMac(name, i),
    model: opts.virtio ? 'virtio' : 'e1000',
    ...mapNetwork(n, i, opts.networks),
  }));
  return { name, disks: tdisks, nics, deviceMap };
}
