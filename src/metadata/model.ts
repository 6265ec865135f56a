/**
 * The neutral description of a source guest. Every MetadataReader (vmx, ovf/ova, libvirt XML,
 * live libvirt, command line) produces a {@link SourceGuest}; every later stage works from it
 * and never from the source's own format. Every variant is listed: readers map what they find
 * onto these words, and keep anything they cannot map in `notes`.
 */

/** The hypervisor the guest was made for. */
export const SOURCE_HYPERVISORS = ['vmware', 'xen-pv', 'xen-fv', 'kvm', 'unknown'] as const;
export type SourceHypervisor = (typeof SOURCE_HYPERVISORS)[number];

export const FIRMWARES = ['bios', 'uefi', 'unknown'] as const;
export type Firmware = (typeof FIRMWARES)[number];

/** The bus a disk or CD-ROM hangs on, as the guest sees it. */
export const DISK_BUSES = [
  'scsi',
  'ide',
  'sata',
  'nvme',
  'virtio',
  'xen',
  'usb',
  'unknown',
] as const;
export type DiskBus = (typeof DISK_BUSES)[number];

/** The controller model behind the bus. */
export const DISK_CONTROLLERS = [
  'pvscsi',
  'lsilogic',
  'lsisas1068',
  'buslogic',
  'virtio-scsi',
  'ide',
  'sata',
  'nvme',
  'virtio',
  'xen',
  'usb',
  'unknown',
] as const;
export type DiskController = (typeof DISK_CONTROLLERS)[number];

/** Image format of a disk file, as declared by the source (never probed). */
export const DISK_FORMATS = ['vmdk', 'raw', 'qcow2', 'vhd', 'vhdx', 'vdi', 'unknown'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];

/** Where a disk's bytes are inside an OVA archive (tar), when read in place. */
export interface ArchiveMember {
  /** The archive file. */
  archive: string;
  /** The member's name inside the archive. */
  member: string;
  /** Byte offset of the member's data in the archive (tar only; absent for compressed kinds). */
  offset?: number | undefined;
  size: number;
}

export interface SourceDisk {
  /**
   * The disk's entry file, absolute: a VMDK descriptor or monolithic VMDK, an image file. For a
   * snapshot (delta) disk this is the top of the chain.
   */
  path: string;
  /**
   * For a snapshot chain, the files below `path` down to the base, in order (top's parent
   * first). Empty when the disk has no parents.
   */
  backingChain: string[];
  format: DiskFormat;
  bus: DiskBus;
  controller: DiskController;
  /**
   * The slot as the source names it: `scsi0:1`, `sata0:0`, `nvme0:0`, `ide0:1` (vmx),
   * `hda`/`sdb`/`xvda`/`vda` (libvirt), `ovf:/disk/vmdisk1` (OVF).
   */
  slot: string;
  /** Controller number and unit (or target) on it, when the source says. */
  controllerIndex?: number | undefined;
  unit?: number | undefined;
  /** 1 = boot first. */
  bootOrder?: number | undefined;
  readOnly: boolean;
  /** Virtual size in bytes, when the metadata states it (OVF capacity). */
  capacityBytes?: number | undefined;
  /** The file is compressed as stored (OVF `ovf:compression="gzip"`). */
  compression?: 'gzip' | undefined;
  /** Set when the disk is a member of an OVA archive rather than a file of its own. */
  inArchive?: ArchiveMember | undefined;
}

export interface SourceCdrom {
  bus: DiskBus;
  slot: string;
  /** The ISO image, when one is inserted; undefined for an empty drive or a host device. */
  path?: string | undefined;
}

export const NIC_MODELS = [
  'vmxnet3',
  'vmxnet2',
  'vmxnet',
  'e1000',
  'e1000e',
  'vlance',
  'pcnet',
  'rtl8139',
  'virtio',
  'xen-netfront',
  'unknown',
] as const;
export type NicModel = (typeof NIC_MODELS)[number];

/** What the NIC is plugged into on the source. */
export const NETWORK_KINDS = ['network', 'bridge', 'portgroup', 'user', 'unknown'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

export interface SourceNic {
  /** Lower-case `xx:xx:xx:xx:xx:xx`, when the source has one. */
  mac?: string | undefined;
  model: NicModel;
  /** Network, bridge or port group name (`VM Network`, `xenbr0`, `default`). */
  network?: string | undefined;
  networkKind: NetworkKind;
}

export const VIDEO_MODELS = ['vmvga', 'vga', 'cirrus', 'qxl', 'virtio', 'xen', 'unknown'] as const;
export type VideoModel = (typeof VIDEO_MODELS)[number];

export interface SourceVideo {
  model: VideoModel;
  vramBytes?: number | undefined;
}

export interface SourceSound {
  /** The source's own word: `hdaudio`, `es1371`, `sb16`, `ich6`, `ac97`, ... */
  model: string;
}

export interface CpuTopology {
  sockets: number;
  cores: number;
  threads: number;
}

/** Xen PV boot details (libvirt XML): how the guest booted without emulated firmware. */
export interface XenPvBoot {
  bootloader?: string | undefined;
  kernel?: string | undefined;
  initrd?: string | undefined;
  cmdline?: string | undefined;
  /** The console device, e.g. `hvc0`. */
  console?: string | undefined;
}

/** Which reader made a guest, from what. */
export interface SourceOrigin {
  kind: ReaderKind;
  /** The file, archive, domain name or disk list the guest was read from. */
  source: string;
}

export const READER_KINDS = ['vmx', 'ova', 'ovf', 'libvirtxml', 'libvirt', 'disk'] as const;
export type ReaderKind = (typeof READER_KINDS)[number];

/** The neutral source guest. */
export interface SourceGuest {
  name: string;
  hypervisor: SourceHypervisor;
  firmware: Firmware;
  memoryBytes: number;
  vcpus: number;
  cpuTopology?: CpuTopology | undefined;
  /** The source's guest OS word: vmx `guestOS`, OVF `osType`/`vmw:osType`, libvirt `<os><type>` */
  osHint?: string | undefined;
  /** Lower-case RFC 4122 form when the source has a UUID. */
  uuid?: string | undefined;
  disks: SourceDisk[];
  cdroms: SourceCdrom[];
  nics: SourceNic[];
  video?: SourceVideo | undefined;
  sound?: SourceSound | undefined;
  xenPv?: XenPvBoot | undefined;
  /** Everything the reader found but could not map: kept, never silently dropped. */
  notes: string[];
  origin: SourceOrigin;
}
