/**
 * The mapping of the VirtualHardwareSection's items onto the model's devices: disk controllers,
 * disks (with their snapshot chains), CD-ROMs, NICs, video and sound cards, CPUs and memory
 * ({@link GuestBuilder}).
 */
import { MetadataError } from '../../errors.js';
import type {
  DiskBus,
  DiskController,
  NicModel,
  SourceCdrom,
  SourceDisk,
  SourceHypervisor,
  SourceNic,
  SourceSound,
  SourceVideo,
} from '../model.js';
import { normalizeMac } from '../validate.js';
import type { OvfDescriptor, OvfFileRef, OvfLocation, OvfSource } from './ovf-envelope.js';
import { itemSetting } from './ovf-extensions.js';
import {
  type Controller,
  diskFormat,
  type HwItem,
  hostResource,
  nicModel,
  SCSI_MODELS,
} from './ovf-items.js';
import { textIn, unitMultiplier, wholeNumber } from './ovf-xml.js';

export class GuestBuilder {
  readonly notes: string[];
  readonly file: string;
  private readonly controllers = new Map<string, Controller>();
  private readonly controllerItems = new Set<HwItem>();
  readonly disks: SourceDisk[] = [];
  readonly cdroms: SourceCdrom[] = [];
  readonly nics: SourceNic[] = [];
  video: SourceVideo | undefined;
  sound: SourceSound | undefined;
  vcpus: number | undefined;
  cores: number | undefined;
  memoryBytes: number | undefined;
  private readonly usedDisks = new Set<string>();
  /** NICs without a ResourceSubType, by index, with their label. */
  readonly untypedNics = new Map<number, string>();

  constructor(
    private readonly desc: OvfDescriptor,
    private readonly src: OvfSource,
    private readonly hypervisor: SourceHypervisor,
    notes: string[],
  ) {
    this.notes = notes;
    this.file = desc.file;
  }

  private int(item: HwItem, field: string): number | undefined {
    const t = textIn(item.el, field);
    return t === undefined ? undefined : wholeNumber(t, `"${item.label}" ${field}`, this.file);
  }

  /** First pass: the controllers, so devices can find their Parent whatever the order. */
  addControllers(items: HwItem[]): void {
    const perBus = new Map<DiskBus, number>();
    for (const item of items) {
      const c = this.controllerOf(item);
      if (!c) continue;
      // Controllers number themselves in Address (VMware, VirtualBox); otherwise count them.
      const address = textIn(item.el, 'Address');
      const index =
        address !== undefined && /^\d{1,4}$/.test(address)
          ? Number(address)
          : (perBus.get(c.bus) ?? 0);
      perBus.set(c.bus, Math.max(perBus.get(c.bus) ?? 0, index + 1));
      this.controllerItems.add(item);
      if (!this.controllers.has(item.id))
        this.controllers.set(item.id, { ...c, index, label: item.label });
    }
  }

  private controllerOf(item: HwItem): { bus: DiskBus; controller: DiskController } | undefined {
    const sub = item.subType?.toLowerCase();
    if (sub === 'vmware.nvme.controller' || (item.type === 20 && sub?.includes('nvme'))) {
      return { bus: 'nvme', controller: 'nvme' };
    }
    switch (item.type) {
      case 5:
        return { bus: 'ide', controller: 'ide' };
      case 6: {
        const model = sub === undefined ? undefined : SCSI_MODELS[sub];
        if (model === undefined) {
          this.notes.push(
            sub === undefined
              ? `SCSI controller "${item.label}" has no ResourceSubType: model unknown`
              : `unknown SCSI controller model "${item.subType}" on "${item.label}"`,
          );
        }
        return { bus: 'scsi', controller: model ?? 'unknown' };
      }
      case 20:
        if (sub !== undefined && !/ahci|sata/.test(sub)) {
          this.notes.push(
            `unknown storage controller "${item.subType}" on "${item.label}": taken as SATA`,
          );
        }
        return { bus: 'sata', controller: 'sata' };
      default:
        return undefined;
    }
  }

  private parentOf(item: HwItem): { controller: Controller | undefined } {
    const parent = textIn(item.el, 'Parent');
    const controller = parent === undefined ? undefined : this.controllers.get(parent);
    if (!controller) {
      this.notes.push(
        parent === undefined
          ? `"${item.label}" has no Parent controller: bus unknown`
          : `"${item.label}" has Parent ${parent}, which is not a disk controller: bus unknown`,
      );
    }
    return { controller };
  }

  private locateOrThrow(file: OvfFileRef, what: string): OvfLocation {
    const loc = this.src.locate(file.href);
    if (!loc) {
      throw new MetadataError(
        this.file,
        `${what} file "${file.href}" (File ${file.id}) is missing: ${this.src.missing(file.href)}`,
      );
    }
    return loc;
  }

  private fileOf(id: string, item: HwItem): OvfFileRef {
    const f = this.desc.files.get(id);
    if (!f) {
      throw new MetadataError(
        this.file,
        `"${item.label}" refers to File "${id}", which is not in the References`,
      );
    }
    return f;
  }

  addDisk(item: HwItem): void {
    const host = textIn(item.el, 'HostResource');
    const ref = hostResource(host);
    if (!ref) {
      throw new MetadataError(
        this.file,
        host === undefined
          ? `disk "${item.label}" has no HostResource: which disk it is is unknown`
          : `disk "${item.label}" has HostResource "${host}", expected ovf:/disk/ID or ovf:/file/ID`,
      );
    }
    const { controller } = this.parentOf(item);
    let file: OvfFileRef;
    let capacityBytes: number | undefined;
    let formatUrl: string | undefined;
    const backingChain: string[] = [];
    if (ref.kind === 'file') {
      file = this.fileOf(ref.id, item);
    } else {
      const def = this.desc.disks.get(ref.id);
      if (!def) {
        throw new MetadataError(
          this.file,
          `"${item.label}" refers to disk "${ref.id}", which is not in the DiskSection`,
        );
      }
      if (this.usedDisks.has(def.id)) {
        throw new MetadataError(this.file, `disk "${def.id}" is attached twice ("${item.label}")`);
      }
      this.usedDisks.add(def.id);
      if (def.fileRef === undefined) {
        this.notes.push(
          `"${item.label}" (ovf:/disk/${def.id}) has no file: a blank disk the importer would create; not converted`,
        );
        return;
      }
      file = this.fileOf(def.fileRef, item);
      capacityBytes = def.capacityBytes;
      formatUrl = def.formatUrl;
      const seen = new Set([def.id]);
      for (let p = def.parentRef; p !== undefined; ) {
        const parent = this.desc.disks.get(p);
        if (!parent) {
          throw new MetadataError(
            this.file,
            `disk "${ref.id}" has parentRef "${p}", which is not in the DiskSection`,
          );
        }
        if (seen.has(parent.id)) {
          throw new MetadataError(
            this.file,
            `disk "${ref.id}": the parentRef chain loops at "${parent.id}"`,
          );
        }
        seen.add(parent.id);
        this.usedDisks.add(parent.id);
        if (parent.fileRef === undefined) {
          throw new MetadataError(
            this.file,
            `disk "${parent.id}" (parent of "${ref.id}") has no file`,
          );
        }
        backingChain.push(
          this.locateOrThrow(this.fileOf(parent.fileRef, item), 'backing disk').path,
        );
        p = parent.parentRef;
      }
    }
    const loc = this.locateOrThrow(file, 'disk');
    let format = diskFormat(formatUrl, file.href);
    if (format === undefined) {
      this.notes.push(
        `"${item.label}": disk format ${formatUrl === undefined ? `of "${file.href}"` : `"${formatUrl}"`} not recognised`,
      );
      format = 'unknown';
    }
    this.disks.push({
      path: loc.path,
      backingChain,
      format,
      bus: controller?.bus ?? 'unknown',
      controller: controller?.controller ?? 'unknown',
      slot: `ovf:/${ref.kind}/${ref.id}`,
      controllerIndex: controller?.index,
      unit: this.int(item, 'AddressOnParent'),
      readOnly: false,
      capacityBytes,
      compression: file.compression,
      inArchive: loc.inArchive,
    });
  }

  addCdrom(item: HwItem): void {
    const { controller } = this.parentOf(item);
    const unit = this.int(item, 'AddressOnParent');
    const slot =
      controller && unit !== undefined
        ? `${controller.bus}${controller.index}:${unit}`
        : `ovf:/item/${item.id}`;
    const host = textIn(item.el, 'HostResource');
    const ref = hostResource(host);
    let isoPath: string | undefined;
    if (ref?.kind === 'file') {
      const f = this.fileOf(ref.id, item);
      const loc = this.src.locate(f.href);
      if (loc) isoPath = loc.path;
      else
        this.notes.push(
          `ISO "${f.href}" of "${item.label}" is missing (${this.src.missing(f.href)}): drive left empty`,
        );
    } else if (host !== undefined) {
      this.notes.push(
        `"${item.label}" has HostResource "${host}", not an ISO file: drive left empty`,
      );
    }
    this.cdroms.push({ bus: controller?.bus ?? 'unknown', slot, path: isoPath });
  }

  addNic(item: HwItem): void {
    let model: NicModel = 'unknown';
    if (item.subType === undefined) {
      // VirtualBox writes no subtype for virtio: its vbox:Machine section may still say.
      this.untypedNics.set(this.nics.length, item.label);
    } else {
      const m = nicModel(item.subType, this.hypervisor === 'vmware');
      if (m === undefined)
        this.notes.push(`unknown NIC model "${item.subType}" on "${item.label}"`);
      model = m ?? 'unknown';
    }
    const address = textIn(item.el, 'Address');
    const mac = normalizeMac(address);
    if (address !== undefined && mac === undefined) {
      this.notes.push(`NIC "${item.label}" has Address "${address}", not a MAC`);
    }
    const network = textIn(item.el, 'Connection');
    this.nics.push({
      mac,
      model,
      network,
      networkKind: network === undefined ? 'unknown' : 'network',
    });
  }

  addVideo(item: HwItem): void {
    if (this.video) {
      this.notes.push(`further video card "${item.label}" not converted`);
      return;
    }
    const kb = itemSetting(item, 'videoRamSizeInKB');
    const vram = kb !== undefined && /^\d+$/.test(kb) ? Number(kb) * 1024 : undefined;
    if (this.hypervisor === 'vmware') {
      this.video = { model: 'vmvga', vramBytes: vram };
    } else {
      this.notes.push(
        `video card "${item.label}"${item.subType ? ` (${item.subType})` : ''}: model unknown`,
      );
      this.video = { model: 'unknown', vramBytes: vram };
    }
  }

  addSound(item: HwItem): void {
    if (this.sound) {
      this.notes.push(`further sound card "${item.label}" not converted`);
      return;
    }
    const model = item.subType?.replace(/^vmware\.soundcard\./i, '');
    if (model === undefined) this.notes.push(`sound card "${item.label}" has no ResourceSubType`);
    this.sound = { model: model ?? 'unknown' };
  }

  addCpu(item: HwItem): void {
    if (this.vcpus !== undefined) {
      this.notes.push(`further CPU item "${item.label}" ignored`);
      return;
    }
    this.vcpus = this.int(item, 'VirtualQuantity');
    if (this.vcpus === undefined) {
      throw new MetadataError(this.file, `CPU item "${item.label}" has no VirtualQuantity`);
    }
    const cores = textIn(item.el, 'CoresPerSocket');
    if (cores !== undefined) this.cores = wholeNumber(cores, 'CoresPerSocket', this.file);
  }

  addMemory(item: HwItem): void {
    if (this.memoryBytes !== undefined) {
      this.notes.push(`further memory item "${item.label}" ignored`);
      return;
    }
    const quantity = this.int(item, 'VirtualQuantity');
    if (quantity === undefined) {
      throw new MetadataError(this.file, `memory item "${item.label}" has no VirtualQuantity`);
    }
    let unitsText = textIn(item.el, 'AllocationUnits');
    if (unitsText === undefined) {
      this.notes.push('memory has no AllocationUnits: MiB assumed');
      unitsText = 'byte * 2^20';
    }
    const units = unitMultiplier(unitsText);
    if (units === undefined) {
      throw new MetadataError(this.file, `memory AllocationUnits "${unitsText}" not recognised`);
    }
    this.memoryBytes = quantity * units;
  }

  /** Maps one item onto the model (controllers were taken by {@link addControllers}). */
  add(item: HwItem): void {
    if (this.controllerItems.has(item)) return;
    const handlers: Record<number, (it: HwItem) => void> = {
      3: (it) => this.addCpu(it),
      4: (it) => this.addMemory(it),
      10: (it) => this.addNic(it),
      15: (it) => this.addCdrom(it),
      16: (it) => this.addCdrom(it),
      17: (it) => this.addDisk(it),
      24: (it) => this.addVideo(it),
      35: (it) => this.addSound(it),
    };
    const unconverted: Record<number, string> = {
      14: 'floppy drive',
      21: 'serial port',
      22: 'parallel port',
      23: 'USB controller',
    };
    const soundcard = item.type === 1 && /^vmware\.soundcard\./i.test(item.subType ?? '');
    const handler = soundcard
      ? (it: HwItem) => this.addSound(it)
      : item.type === undefined
        ? undefined
        : handlers[item.type];
    const kind = item.type === undefined ? undefined : unconverted[item.type];
    const sub = item.subType ? ` (${item.subType})` : '';
    if (handler) handler(item);
    else if (kind) this.notes.push(`${kind} "${item.label}"${sub} not converted`);
    else if (item.type === 1 && item.subType?.toLowerCase() === 'vmware.vmci') {
      this.notes.push(`VMCI device "${item.label}" not converted`);
    } else {
      this.notes.push(
        `hardware item "${item.label}" (ResourceType ${item.type ?? 'missing'}${item.subType ? `, ${item.subType}` : ''}) not converted`,
      );
    }
  }

  /** The disks in the DiskSection that no device uses (and that are no device's parent). */
  noteUnusedDisks(): void {
    for (const id of this.desc.disks.keys()) {
      if (!this.usedDisks.has(id)) {
        this.notes.push(`disk ${id} of the DiskSection is attached to no device: not converted`);
      }
    }
  }
}
