/**
 * The composition root: the one place that decides which class serves which token. Modules
 * never reach for tsyringe's global container; they get what they need injected.
 *
 * The root holds the process-wide things (logger, node factory) and the modules (readers,
 * storage modes, and how to make a QemuImg or a libvirt connection); a child container per run
 * adds that run's node and settings. Modules registered in the root and resolved from a run
 * container get the run's node. To swap a module (a test, a plug-in), register another one
 * for the same token: the choice functions take the last one registered of each kind.
 */
import { container, type DependencyContainer } from 'tsyringe';
import type { GuestOs, HvSource } from '../convert/modules.js';
import { Converter } from '../convert/pipeline.js';
import { Doctor } from '../doctor/doctor.js';
import { DebianGuestOs } from '../guestos/debian.js';
import { RhelGuestOs } from '../guestos/rhel.js';
import { WindowsGuestOs } from '../guestos/windows.js';
import { VmwareLinuxSource } from '../hvsource/vmware-linux.js';
import { VmwareWindowsSource } from '../hvsource/vmware-windows.js';
import { XenLinuxSource } from '../hvsource/xen-linux.js';
import { KvmTarget } from '../hvtarget/kvm.js';
import { Importer } from '../import/importer.js';
import type { Logger } from '../log/logger.js';
import { DiskReader } from '../metadata/disk/disk-reader.js';
import { LibvirtReader } from '../metadata/libvirt/libvirt-reader.js';
import { LibvirtXmlReader } from '../metadata/libvirt/libvirtxml-reader.js';
import { OvaReader } from '../metadata/ovf/ova-reader.js';
import { OvfReader } from '../metadata/ovf/ovf-reader.js';
import type { MetadataReader } from '../metadata/reader.js';
import { VmxReader } from '../metadata/vmx/vmx-reader.js';
import type { Node } from '../node/node.js';
import { NodeFactory } from '../node/node-factory.js';
import type { NodeSpec } from '../node/node-spec.js';
import { HYPERVISOR_DRIVERS } from '../provisioning/drivers/index.js';
import { DEFAULT_LIBVIRT_URI, LibvirtConnection } from '../provisioning/libvirt/connection.js';
import { convertRepositoryImage } from '../provisioning/master-conversion.js';
import { type ProvisionerHooks, VclProvisioner } from '../provisioning/provisioner.js';
import { RunScope } from '../run/run-scope.js';
import { bindSignal } from '../run/signal-bound-node.js';
import { MasterCache } from '../storage/master-cache.js';
import { CopyMode } from '../storage/modes/copy.js';
import { CowMode } from '../storage/modes/cow.js';
import { InPlaceMode } from '../storage/modes/in-place.js';
import { SnapshotMode } from '../storage/modes/snapshot.js';
import type { StorageMode } from '../storage/modes/storage-mode.js';
import { QemuImg } from '../storage/qemu-img.js';
import { TOKENS } from './tokens.js';

/** Every metadata reader, in the order `inspect --help` lists their options. */
const READERS: readonly (new () => MetadataReader)[] = [
  VmxReader,
  OvaReader,
  OvfReader,
  LibvirtXmlReader,
  LibvirtReader,
  DiskReader,
];
/** Conversion modules: source hypervisors and guest OS families. */
const HV_SOURCES: (new () => HvSource)[] = [VmwareLinuxSource, VmwareWindowsSource, XenLinuxSource];
const GUEST_OSES: (new () => GuestOs)[] = [DebianGuestOs, RhelGuestOs, WindowsGuestOs];
/** Every storage mode (in-place only does anything when asked for explicitly). */
const STORAGE_MODES: readonly (new () => StorageMode)[] = [
  CopyMode,
  SnapshotMode,
  InPlaceMode,
  CowMode,
];

/**
 * The process-wide container: logger, node factory (so the SSH pool is shared), and every
 * module, resolved per run.
 */
export function createRootContainer(
  logger: Logger,
  nodes = new NodeFactory(undefined, { logger }),
): DependencyContainer {
  const root = container.createChildContainer();
  root.register(TOKENS.Logger, { useValue: logger });
  root.register(TOKENS.NodeFactory, { useValue: nodes });
  for (const reader of READERS) root.register(TOKENS.MetadataReader, { useClass: reader });
  for (const mode of STORAGE_MODES) root.register(TOKENS.StorageMode, { useClass: mode });
  root.register(TOKENS.Doctor, { useClass: Doctor });
  // Conversion: the pipeline and its modules (each asked whether it applies to the guest).
  for (const m of HV_SOURCES) root.register(TOKENS.HvSource, { useClass: m });
  for (const m of GUEST_OSES) root.register(TOKENS.GuestOs, { useClass: m });
  root.register(TOKENS.HvTarget, { useClass: KvmTarget });
  root.register(TOKENS.Converter, { useClass: Converter });
  // Provisioning: the hypervisor drivers (asked in order), one master cache per node.
  for (const d of HYPERVISOR_DRIVERS) root.register(TOKENS.HypervisorDriver, { useClass: d });
  const masterCaches = new Map<string, MasterCache>();
  root.register(TOKENS.MasterCacheFor, {
    useValue: (qemu: QemuImg) => {
      let m = masterCaches.get(qemu.node.name);
      if (!m) {
        m = new MasterCache(qemu);
        masterCaches.set(qemu.node.name, m);
      }
      return m;
    },
  });
  root.register(TOKENS.ProvisionerHooks, { useValue: {} satisfies ProvisionerHooks });
  root.register(TOKENS.ConvertMaster, {
    useFactory: (c) => (job: Parameters<typeof convertRepositoryImage>[3]) =>
      convertRepositoryImage(
        c.resolve<Converter>(TOKENS.Converter),
        c.resolve<Node>(TOKENS.Node),
        c.resolve<Logger>(TOKENS.Logger),
        job,
      ),
  });
  root.register(TOKENS.VclProvisioner, { useClass: VclProvisioner });
  root.register(TOKENS.Importer, { useClass: Importer });
  // Factories, resolved in a run container: `c` is that container (its node, its settings).
  root.register(TOKENS.QemuImg, {
    useFactory: (c) =>
      new QemuImg(
        c.resolve<Node>(TOKENS.Node),
        c.resolve<readonly string[]>(TOKENS.AllowedBackingDirs),
      ),
  });
  root.register(TOKENS.LibvirtConnection, {
    useFactory: (c) =>
      new LibvirtConnection(c.resolve<Node>(TOKENS.Node), c.resolve<string>(TOKENS.LibvirtUri)),
  });
  return root;
}

/** What one run is set up with, besides its node. */
export interface RunSettings {
  /** Directories besides an image's own that may hold backing files. */
  allowedBackingDirs?: readonly string[] | undefined;
  /** The libvirt URI on the node (`--connect`); {@link DEFAULT_LIBVIRT_URI} when absent. */
  libvirtUri?: string | undefined;
  /**
   * The run's AbortSignal and cleanup stack; default: the root's TOKENS.RunScope (the CLI
   * registers one per invocation and runs its stack at the end), else a new one.
   */
  scope?: RunScope | undefined;
}

/**
 * A child container for one run (one command, one conversion, one load) on one node: runs
 * stay independent while sharing the root's connection pool. Connects to the node: check
 * every argument before.
 */
export async function createRunContainer(
  root: DependencyContainer,
  spec: NodeSpec,
  settings: RunSettings = {},
): Promise<DependencyContainer> {
  const scope =
    settings.scope ??
    (root.isRegistered(TOKENS.RunScope, true)
      ? root.resolve<RunScope>(TOKENS.RunScope)
      : new RunScope(root.resolve<Logger>(TOKENS.Logger)));
  const run = root.createChildContainer();
  const node = await root.resolve<NodeFactory>(TOKENS.NodeFactory).get(spec);
  // Every command of the run is killed when the run is interrupted.
  run.register(TOKENS.Node, { useValue: bindSignal(node, scope.signal) });
  run.register(TOKENS.Cleanup, { useValue: scope.cleanup });
  run.register(TOKENS.AbortSignal, { useValue: scope.signal });
  run.register(TOKENS.AllowedBackingDirs, { useValue: [...(settings.allowedBackingDirs ?? [])] });
  run.register(TOKENS.LibvirtUri, { useValue: settings.libvirtUri ?? DEFAULT_LIBVIRT_URI });
  return run;
}
