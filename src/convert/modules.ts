/**
 * The three kinds of conversion module of the v2v design, each a small interface with one
 * implementation per file in its own folder (src/hvsource, src/guestos, src/hvtarget). The
 * pipeline asks each whether it applies to this guest (from the source model and what
 * inspection found) and has the chosen ones plan their changes; nothing outside a module
 * branches on distro names.
 */

import type { DomainDefinitionV2v } from '../hvtarget/domain.js';
import type { Logger } from '../log/logger.js';
import type { SourceGuest } from '../metadata/model.js';
import type { Node } from '../node/node.js';
import type { CleanupStack } from '../run/cleanup.js';
import type { InitramfsMode } from './initramfs.js';
import type { GuestInspection } from './inspection.js';
import type { Plan } from './plan.js';
import type { TargetLayout } from './target.js';

/** Options every module may read (from `v2v-load convert`). */
export interface ConvertModuleOptions {
  /** false with `--no-virtio`: IDE disks and e1000 NICs. */
  virtio: boolean;
  /** libvirt domain type of the output. */
  domainType: 'kvm' | 'qemu';
  /** `--with NAME=PATH`: files a module may need (e.g. a kernel with virtio). */
  withFiles: Record<string, string>;
  /** `--virtio-win DIR_OR_ISO`: Windows virtio drivers in the virtio-win ISO's layout. */
  virtioWin?: string | undefined;
  /** `--remove-vmware-tools-firstboot`: a Windows RunOnce entry uninstalls VMware Tools. */
  removeVmwareToolsFirstboot?: boolean | undefined;
  /**
   * `--initramfs`: extend the guest's image with the drivers where that is known to be right
   * (the default), or always rebuild it with the guest's own tool.
   */
  initramfs?: InitramfsMode | undefined;
}

/** The node the conversion runs on, for modules that read files the user gave (e.g. drivers). */
export interface ModuleIo {
  node: Node;
  cleanup: CleanupStack;
}

/** What every module works from. */
export interface ConversionContext {
  source: SourceGuest;
  inspection: GuestInspection;
  target: TargetLayout;
  options: ConvertModuleOptions;
  log: Logger;
  /** The time of the conversion (recorded in the domain's metadata). */
  now: Date;
  /** Absent in plan tests that need no node. */
  io?: ModuleIo | undefined;
}

/** One interface of the guest kept across the conversion (report line). */
export interface InterfaceIdentity {
  /** The name the guest's configuration uses (e.g. ens192). */
  name: string;
  mac: string;
  /** The name it gets on the target: the same, pinned to its MAC. */
  newName: string;
  /** Static addresses found in its configuration. */
  addresses: string[];
  /** Where it is configured: ifupdown, systemd-networkd, NetworkManager. */
  tool: string;
  /** The file that pins it. */
  pinnedBy: string;
}

/** The guest operating system family: how drivers, packages, devices and boot work there. */
export interface GuestOs {
  readonly name: string;
  applies(inspection: GuestInspection): boolean;
  /** Makes the drivers load at boot (initramfs configuration, so later kernels keep them). */
  enableDrivers(plan: Plan, drivers: readonly string[], ctx: ConversionContext): Promise<void>;
  /** Removes installed packages with the guest's own package tool; absent ones are skipped. */
  removeApplications(plan: Plan, names: readonly string[], ctx: ConversionContext): Promise<void>;
  /** Renames disk devices (`sda` → `vda`) wherever the guest names them. */
  remapDeviceNames(
    plan: Plan,
    map: Readonly<Record<string, string>>,
    ctx: ConversionContext,
  ): Promise<void>;
  /** Keeps each configured interface's name (and so its addresses) on the new NIC model. */
  keepNetworkIdentity(plan: Plan, ctx: ConversionContext): Promise<InterfaceIdentity[]>;
  /**
   * Makes the initramfs hold `drivers` (extended, or rebuilt by the guest's tool) and the
   * bootloader configuration name the target's disks.
   */
  prepareBootable(plan: Plan, ctx: ConversionContext, drivers?: readonly string[]): Promise<void>;
}

/** Undoes the source hypervisor: its tools in the guest, its devices in the metadata. */
export interface HvSource {
  readonly name: string;
  applies(source: SourceGuest, inspection: GuestInspection): boolean;
  unconfigureGuest(plan: Plan, os: GuestOs, ctx: ConversionContext): Promise<void>;
}

/** The target hypervisor: configures the guest for it and writes its metadata. */
export interface HvTarget {
  readonly name: string;
  /**
   * Throws a clear error, before anything is written, when the guest cannot be converted
   * (e.g. no kernel with virtio and none given with `--with`). Called again with `installed`
   * once the prerequisites are in the guest: what they installed must then be enough.
   */
  canConfigure(ctx: ConversionContext, installed?: boolean): void;
  /**
   * Plans what must be in the guest before the rest is planned (a kernel package given with
   * `--with kernel=`): the pipeline applies it first and inspects the guest's software again,
   * so the plan sees the kernels, initramfs images and boot entries it installed.
   */
  planPrerequisites(plan: Plan, os: GuestOs, ctx: ConversionContext): Promise<void>;
  configureGuest(plan: Plan, os: GuestOs, ctx: ConversionContext): Promise<void>;
  /** The domain definition of the converted guest. */
  configureMetadata(ctx: ConversionContext): DomainDefinitionV2v;
}
