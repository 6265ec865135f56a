/**
 * A hypervisor driver (VCL's lib/VCL/Module/Provisioning/libvirt/<Driver>.pm): what the
 * provisioner cannot do through libvirt alone. One folder per driver under drivers/; the
 * provisioner asks each, in order, whether it serves the node, and the first that does wins
 * (see {@link chooseDriver}). Adding a driver never touches the provisioner.
 */
import type { DomainDefinitionV2v } from '../../hvtarget/domain.js';
import type { Logger } from '../../log/logger.js';
import type { Node } from '../../node/node.js';
import type { ImageRef } from '../../storage/image-format.js';
import type { MasterCache } from '../../storage/master-cache.js';
import type { QemuImg } from '../../storage/qemu-img.js';
import type { ImageFiles } from '../../storage/repository.js';
import type { RecordedHardware } from '../domain-xml.js';
import type { LibvirtConnection } from '../libvirt/connection.js';
import type { DomainType } from '../libvirt/domain-xml-types.js';
import type { Reservation } from '../reservation.js';

/** What a driver works with. */
export interface DriverContext {
  node: Node;
  conn: LibvirtConnection;
  qemu: QemuImg;
  res: Reservation;
  log: Logger;
  /** The domain types libvirt offers for x86_64 hvm guests on the node (asked once). */
  domainTypes(): Promise<string[]>;
  /** The node's master cache (one copy of a missing master, however many loads ask). */
  masters: MasterCache;
  /**
   * Converts a VMware image of the repository into the master (+ its extra disks, its domain
   * XML and its conversion record beside it) with the v2v pipeline.
   * @returns true when this call converted it (false: a load it waited for did)
   */
  convertMaster(found: ImageFiles): Promise<boolean>;
  /**
   * The Windows registry changes on the master cache's fresh copy of a Windows image, before
   * it becomes the master (VMware's services off, the boot drivers of the target), and its
   * conversion record. @returns false when the repository image was converted before
   */
  prepareWindowsMaster(copy: ImageRef, found: ImageFiles): Promise<boolean>;
  /**
   * The hardware the image's recorded domain XML describes (datastore, then repository) with
   * the devices its conversion record chose; read once the master is present, then kept.
   */
  recordedHardware(): Promise<RecordedHardware>;
}

/** Whether a driver serves a node, and why not. */
export type DriverFit = { fits: true } | { fits: false; reason: string };

/** What pre_define made: the domain's disks (the provisioner removes them on rollback). */
export interface PreparedDisks {
  /** The disk images the domain uses (one COW image per disk of the master), first = boot. */
  disks: { path: string; format: 'qcow2' }[];
  /** The master the first COW image is over. */
  master: string;
  /** Every disk of the master, in the domain's order (`master` first). */
  masters: string[];
  /** True when this load copied (or converted) a disk of the master into the datastore. */
  masterCopied: boolean;
  /** True when this load converted the master (the v2v pipeline, the Windows registry). */
  masterConverted: boolean;
}

/** Steps a driver reports to the provisioner (for the rollback and the failure hooks). */
export interface PreDefineSteps {
  /** Called once the master is in the datastore. */
  masterReady(master: string, copied: boolean): Promise<void>;
  /** Called right before each COW image is made: register its removal. */
  cowCreated(path: string): void;
}

/** A hypervisor driver. */
export interface HypervisorDriver {
  /** VCL's driver name, e.g. `KVM`. */
  readonly name: string;
  /** The libvirt domain type it defines. */
  readonly domainType: DomainType;
  /** `<driver name=...>` of its disks. */
  readonly diskDriverName: string;
  readonly diskFormat: 'qcow2';
  readonly diskFileExtension: 'qcow2';
  /** Examines the node: does this driver serve it? Never throws for "no". */
  fits(ctx: DriverContext): Promise<DriverFit>;
  /** May add to or change the generated domain (VCL's extend_domain_xml). */
  extendDomain?(def: DomainDefinitionV2v, ctx: DriverContext): void;
  /** Master in the datastore (copied or converted from the repository), then the COW images. */
  preDefine(ctx: DriverContext, steps: PreDefineSteps): Promise<PreparedDisks>;
}

/**
 * The first driver that fits the node, and each refusal before it (driver name → reason).
 * @returns undefined driver when none fits
 */
export async function chooseDriver(
  drivers: readonly HypervisorDriver[],
  ctx: DriverContext,
): Promise<{ driver: HypervisorDriver | undefined; refused: Record<string, string> }> {
  const refused: Record<string, string> = {};
  for (const d of drivers) {
    const fit = await d.fits(ctx);
    if (fit.fits) return { driver: d, refused };
    refused[d.name] = fit.reason;
  }
  return { driver: undefined, refused };
}
