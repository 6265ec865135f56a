/**
 * The VirtualHardwareSection's RASD items ({@link HwItem}) as read from the descriptor, the
 * `HostResource` references, the files the devices use ({@link fileRoles}), and the tables mapping
 * OVF controller, NIC and disk-format names onto the neutral model.
 */
import * as posix from 'node:path/posix';
import { MetadataError } from '../../errors.js';
import type { DiskBus, DiskController, DiskFormat, NicModel } from '../model.js';
import type { OvfDescriptor, OvfDiskDef, OvfFileRole } from './ovf-envelope.js';
import { attrOf, type El, kid, kids, textIn, wholeNumber } from './ovf-xml.js';

/** One RASD item (`Item`, `StorageItem` or `EthernetPortItem`), prefixes stripped. */
export interface HwItem {
  el: El;
  id: string;
  type: number | undefined;
  subType: string | undefined;
  label: string;
}

export function hardwareSection(desc: OvfDescriptor, notes: string[]): El {
  const sections = kids(desc.system, 'VirtualHardwareSection');
  const first = sections[0];
  if (!first) throw new MetadataError(desc.file, 'no VirtualHardwareSection in the VirtualSystem');
  if (sections.length > 1) {
    notes.push(`${sections.length - 1} further VirtualHardwareSection(s) not read`);
  }
  return first;
}

export function hardwareItems(desc: OvfDescriptor, section: El, notes: string[]): HwItem[] {
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
export function hostResource(
  text: string | undefined,
): { kind: 'disk' | 'file'; id: string } | undefined {
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

export interface Controller {
  bus: DiskBus;
  controller: DiskController;
  index: number;
  label: string;
}

export const SCSI_MODELS: Record<string, DiskController> = {
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

export function nicModel(word: string, vmware: boolean): NicModel | undefined {
  const w = word.toLowerCase();
  // VMware's "vlance" is an AMD PCnet32; ovftool writes it as PCNet32.
  if (w === 'pcnet32') return vmware ? 'vlance' : 'pcnet';
  return NIC_MODELS[w];
}

/** `ovf:format` URL (or the file's extension) to the image format. */
export function diskFormat(url: string | undefined, href: string): DiskFormat | undefined {
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
