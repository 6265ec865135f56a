/**
 * Disks and CD-ROMs of a libvirt domain: source, format, bus, SCSI controller model, controller
 * slot and backing chain, plus `<os><boot dev>` ordering. Each disk's source is recorded as a
 * {@link DiskSourceRef} for the reader to resolve.
 */

import { attr } from '../../formats/xml.js';
import type {
  DiskBus,
  DiskController,
  DiskFormat,
  SourceCdrom,
  SourceDisk,
  SourceHypervisor,
} from '../model.js';
import { child, children, type El, has, intAttr, lookup } from './domain-el.js';

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

export interface Controllers {
  scsi: Map<number, string | undefined>;
}

export function controllersOf(devices: El | undefined): Controllers {
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

/** Applies `<os><boot dev>` when no device has a `<boot order>` of its own. */
export function applyOsBoot(os: El | undefined, disks: SourceDisk[], notes: string[]): void {
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

export interface DeviceContext {
  hv: SourceHypervisor;
  controllers: Controllers;
  notes: string[];
  disks: SourceDisk[];
  cdroms: SourceCdrom[];
  sources: DiskSourceRef[];
}

export function readDisk(d: El, i: number, ctx: DeviceContext): void {
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
