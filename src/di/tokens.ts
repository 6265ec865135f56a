/**
 * Injection tokens. Every constructor parameter of an injectable class names one of these with
 * `@inject(TOKEN)`: vitest's esbuild emits no decorator metadata, so types alone are not enough.
 */
export const TOKENS = {
  /** {@link NodeFactory}: makes nodes, owns the SSH connection pool. Root container. */
  NodeFactory: Symbol('NodeFactory'),
  /** {@link Logger}: diagnostics on stderr. Root container. */
  Logger: Symbol('Logger'),
  /** {@link RunScope}: this invocation's AbortSignal and cleanup stack. Root container. */
  RunScope: Symbol('RunScope'),
  /**
   * {@link Node}: the node this run works on, with the run's AbortSignal bound to every
   * command. Run container.
   */
  Node: Symbol('Node'),
  /** {@link CleanupStack}: register each temporary resource where it is made. Run container. */
  Cleanup: Symbol('Cleanup'),
  /** The run's `AbortSignal`: aborts on SIGINT/SIGTERM. Run container. */
  AbortSignal: Symbol('AbortSignal'),
  /** {@link Doctor}. Run container. */
  Doctor: Symbol('Doctor'),
  /**
   * {@link MetadataReader}: registered once per reader (a multi-registration); resolve them all
   * with `resolveAll` and pick one with `readerFor(kind, readers)`.
   */
  MetadataReader: Symbol('MetadataReader'),
  /**
   * {@link StorageMode}: registered once per mode; resolve them all with `resolveAll` and pick
   * one with `chooseStorageMode(modes, name)`.
   */
  StorageMode: Symbol('StorageMode'),
  /** {@link QemuImg} on the run's node, with the run's allowed backing directories. */
  QemuImg: Symbol('QemuImg'),
  /** Directories (besides an image's own) that may hold backing files: `string[]`. Per run. */
  AllowedBackingDirs: Symbol('AllowedBackingDirs'),
  /** {@link LibvirtConnection} to the run's libvirt URI on the run's node. */
  LibvirtConnection: Symbol('LibvirtConnection'),
  /** The run's libvirt URI (`--connect`): `string`. Per run. */
  LibvirtUri: Symbol('LibvirtUri'),
  /** {@link HvSource}: one registration per module (multi); the pipeline asks each `applies`. */
  HvSource: Symbol('HvSource'),
  /** {@link GuestOs}: one registration per OS family (multi). */
  GuestOs: Symbol('GuestOs'),
  /** {@link HvTarget}: the target hypervisor (KVM). */
  HvTarget: Symbol('HvTarget'),
  /** {@link Converter}: the conversion pipeline, resolved in a run container. */
  Converter: Symbol('Converter'),
  /** {@link HypervisorDriver}: one registration per driver (multi), asked in order. */
  HypervisorDriver: Symbol('HypervisorDriver'),
  /** {@link MasterCacheFor}: the node's master cache (one per node and process). */
  MasterCacheFor: Symbol('MasterCacheFor'),
  /** {@link ConvertMasterFn}: converts a repository VMware image into a master. Run container. */
  ConvertMaster: Symbol('ConvertMaster'),
  /** {@link ProvisionerHooks}: test hooks of the provisioner (default: none). */
  ProvisionerHooks: Symbol('ProvisionerHooks'),
  /** {@link VclProvisioner}: the VCL provisioning module, resolved in a run container. */
  VclProvisioner: Symbol('VclProvisioner'),
  /** {@link Importer}: convert + place + define + start on a node, resolved in a run container. */
  Importer: Symbol('Importer'),
} as const;
