/**
 * The typed library of v2v-load: nodes, the qemu-img layer and storage modes, the metadata
 * readers and the neutral guest model, the libvirt connection and domain API, and the DI
 * composition root. A bare `import('v2v-load')` works: the reflect polyfill tsyringe needs is
 * loaded first, here.
 */
import 'reflect-metadata';

// Import and batch: one guest, or a manifest of them, onto libvirt nodes.
export * from './batch/index.js';
export { main as runCli } from './cli/main.js';
export {
  createRootContainer,
  createRunContainer,
  type RunSettings,
} from './di/composition-root.js';
export { TOKENS } from './di/tokens.js';
export type { Accel, CheckResult, DoctorOptions } from './doctor/checks.js';
export { Doctor, type DoctorReport, formatDoctorReport } from './doctor/doctor.js';
export * from './errors.js';
// Shared file formats.
export { type DomainDocument, parseDomainDocument } from './formats/libvirt-domain-xml.js';
export {
  readVmdkDescriptor,
  type VmdkDescriptor,
  type VmdkExtent,
} from './formats/vmdk-descriptor.js';
export { parseUntrustedXml } from './formats/xml.js';
export { ImportError } from './import/errors.js';
export {
  DEFAULT_POOL,
  IMPORT_STAGES,
  type ImportEvent,
  type ImportedDisk,
  Importer,
  type ImportRequest,
  type ImportResult,
  type ImportStage,
} from './import/importer.js';
export { type Logger, StreamLogger } from './log/logger.js';
export { DiskReader } from './metadata/disk/disk-reader.js';
export { LibvirtReader } from './metadata/libvirt/libvirt-reader.js';
export { LibvirtXmlReader } from './metadata/libvirt/libvirtxml-reader.js';
// Metadata: the neutral guest model, the readers, the choice of a reader, the printer.
export * from './metadata/model.js';
export { OvaReader } from './metadata/ovf/ova-reader.js';
export { OvfReader } from './metadata/ovf/ovf-reader.js';
export { formatGuest, guestToJson } from './metadata/printer.js';
export type {
  MetadataReader,
  ReaderContext,
  ReaderOptionSpec,
  ReaderOptions,
} from './metadata/reader.js';
export {
  defaultReaders,
  guessKind,
  readerFor,
  readerOptionSpecs,
} from './metadata/registry.js';
export { sourceGuestSchema, validateGuest } from './metadata/validate.js';
export { VmxReader } from './metadata/vmx/vmx-reader.js';
export { LocalNode } from './node/local-node.js';
export type {
  CommandRunner,
  DirEntry,
  FileOps,
  FileStat,
  FileType,
  Node,
  RunOptions,
  RunResult,
} from './node/node.js';
export { NodeFactory } from './node/node-factory.js';
export { formatSshTarget, type NodeSpec, parseSshUrl, type SshTarget } from './node/node-spec.js';
export { quoteArgv, quoteWord } from './node/quote.js';
export { fingerprintOf, type HostKeyPolicy, HostKeyVerifier } from './node/ssh/host-keys.js';
export { SshConnection, type SshConnectionOptions } from './node/ssh/ssh-connection.js';
export { SshNode } from './node/ssh/ssh-node.js';
// libvirt: connection, domains, snapshots, typed errors, the virsh runner.
export {
  type DomainListEntry,
  LibvirtConnection,
} from './provisioning/libvirt/connection.js';
export { Domain, type DomainHandle } from './provisioning/libvirt/domain.js';
export {
  buildDomainXml,
  type DomainDefinition,
  type DomainDescription,
  describeDomainXml,
} from './provisioning/libvirt/domain-xml-types.js';
export {
  classifyLibvirtError,
  isAlreadyExists,
  isNoAgent,
  isNotFound,
  isOperationInvalid,
  LibvirtError,
  type LibvirtErrorKind,
} from './provisioning/libvirt/errors.js';
export type { SnapshotInfo as DomainSnapshotInfo } from './provisioning/libvirt/snapshot.js';
export {
  DOMAIN_STATES,
  type DomainState,
  type DomainStateName,
} from './provisioning/libvirt/state.js';
export { DEFAULT_LIBVIRT_URI, Virsh } from './provisioning/libvirt/virsh.js';
export { StorageError } from './storage/errors.js';
export {
  formatFromMagic,
  IMAGE_FORMATS,
  type ImageFormat,
  type ImageRef,
  isImageFormat,
  sniffFormat,
} from './storage/image-format.js';
export {
  CopyMode,
  CowMode,
  chooseStorageMode,
  InPlaceMode,
  type PreparedDisk,
  runMode,
  SnapshotMode,
  STORAGE_MODE_NAMES,
  type StorageMode,
  type StorageModeName,
  type StorageRequest,
  storageMode,
} from './storage/modes/index.js';
// Storage: the qemu-img layer, image formats, storage modes, repository.
export {
  type ConvertOptions,
  type ImageInfo,
  type ProgressEvent,
  QemuImg,
} from './storage/qemu-img.js';
export { doesImageExist, imageSize } from './storage/repository.js';
