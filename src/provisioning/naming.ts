/**
 * VCL's names and paths of a load (libvirt.pm's private helpers), pure functions of the
 * reservation. VCL's faults fixed: the computer name is matched literally (never as a regular
 * expression), and a domain of computer `vm4-2` is never taken for one of `vm4-22`.
 */
import * as path from 'node:path';
import { cowPath, masterPath } from '../storage/repository.js';
import { conversionRecordIn } from './conversion-record.js';
import type { Reservation } from './reservation.js';

/** The longest domain name VCL makes. */
export const MAX_DOMAIN_NAME = 48;

/** The directory on the node where domain XML files are written before `virsh define`. */
export const DOMAIN_XML_DIRECTORY = '/tmp/vcl';

/**
 * VCL's domain name: `<computer>_<PrettyName reduced>_<imageid>-v<rev>`, at most `max`
 * characters: the pretty name (letters and digits only) is cut to fit; without room for 5 of
 * its characters it is left out; a computer name longer than `max` gives the computer id.
 * Example: `vm4-22_CentOS7Base64bitVM_3081-v5`.
 */
export function domainName(res: Reservation, max = MAX_DOMAIN_NAME): string {
  const computer = res.computer.shortName;
  if (computer.length > max) return String(res.computer.id);
  const prefix = `${computer}_`;
  const suffix = `${res.image.id}-v${res.image.revision}`;
  const both = prefix.length + suffix.length;
  if (both > max) return computer;
  const middleMax = max - both - 1;
  if (middleMax < 5) return prefix + suffix;
  const middle = res.image.prettyName.replace(/[^a-z0-9]+/gi, '').slice(0, middleMax);
  return middle ? `${prefix}${middle}_${suffix}` : prefix + suffix;
}

/** True when `name` is a domain made for computer `computer` (`<computer>_...` or `<computer>:...`). */
export function isComputerDomain(name: string, computer: string): boolean {
  return (
    name.length > computer.length &&
    name.startsWith(computer) &&
    (name[computer.length] === '_' || name[computer.length] === ':')
  );
}

/** `<computer>_<imageid>-v<rev>`: the base name of the domain's XML file and COW image. */
export function domainFileBaseName(res: Reservation): string {
  return `${res.computer.shortName}_${res.image.id}-v${res.image.revision}`;
}

export function domainXmlDirectoryPath(): string {
  return DOMAIN_XML_DIRECTORY;
}

/** `/tmp/vcl/<computer>_<imageid>-v<rev>.xml` */
export function domainXmlFilePath(res: Reservation): string {
  return path.posix.join(DOMAIN_XML_DIRECTORY, `${domainFileBaseName(res)}.xml`);
}

export function masterImageDirectoryPath(res: Reservation): string {
  return res.vmhost.datastorePath;
}

/**
 * The name of disk `n` (0 = the boot disk) of an image or COW base name: the name itself for
 * the first disk, `<name>-disk<n+1>` for each disk after it (`x-v1-disk2` is the second disk of
 * `x-v1`). A master's extra disks live beside it in the datastore and in the image's
 * directory of the repository.
 */
export function diskFileName(name: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`disk number ${n}`);
  return n === 0 ? name : `${name}-disk${n + 1}`;
}

/** `<datastore>/<image>.qcow2`; disk `n` after the first: `<datastore>/<image>-disk<n+1>.qcow2` */
export function masterImageFilePath(res: Reservation, image = res.image.name, n = 0): string {
  return masterPath(res.vmhost.datastorePath, diskFileName(image, n), res.image.diskFormat);
}

/** `<datastore>/<image>.xml`: the domain XML recorded with a master (capture keeps it). */
export function masterXmlFilePath(res: Reservation, image = res.image.name): string {
  return path.posix.join(res.vmhost.datastorePath, `${image}.xml`);
}

/**
 * `<datastore>/<image>.conversion.json`: how the master became a KVM master (the v2v
 * conversion of a VMware image, the Windows registry changes on a fresh copy, or a capture on
 * KVM); a fetch of an image whose repository copy has one does not convert it again.
 */
export function conversionRecordFilePath(res: Reservation, image = res.image.name): string {
  return conversionRecordIn(res.vmhost.datastorePath, image);
}

/**
 * `<vmpath>/<computer>_<imageid>-v<rev>.qcow2`; the COW image of disk `n` after the first:
 * `<vmpath>/<computer>_<imageid>-v<rev>-disk<n+1>.qcow2`.
 */
export function copyOnWriteFilePath(res: Reservation, n = 0): string {
  const first = cowPath(
    res.vmhost.vmPath,
    res.computer.shortName,
    res.image.id,
    res.image.revision,
    res.image.diskFormat,
  );
  if (n === 0) return first;
  const ext = `.${res.image.diskFormat}`;
  return `${diskFileName(first.slice(0, -ext.length), n)}${ext}`;
}

/** `<vmpath>/<domain>.console.log`: the serial console log post_load reads. */
export function consoleLogPath(res: Reservation, domain = domainName(res)): string {
  return path.posix.join(res.vmhost.vmPath, `${domain}.console.log`);
}

/**
 * VCL core's image name rule: `<osname>-<PrettyName, letters and digits><imageid>-v<rev>`,
 * e.g. `vmwarelinux-CentOS7Base64bitVM3081-v5`.
 */
export function newImageName(res: Reservation): string {
  const os = res.image.osName ?? (res.image.osType === 'windows' ? 'win' : res.image.osType);
  const pretty = res.image.prettyName.replace(/[^a-z0-9]+/gi, '');
  return `${os}-${pretty}${res.image.id}-v${res.image.revision}`;
}

/**
 * Where an image may be found on a management node (VCL's
 * get_image_repository_search_paths): the repository's directory of the image and the
 * repository itself, with wildcards.
 */
export function repositorySearchPaths(res: Reservation, image = res.image.name): string[] {
  const out: string[] = [];
  const repo = res.vmhost.repositoryPath;
  if (repo) {
    out.push(path.posix.join(repo, image, `${image}*`), path.posix.join(repo, `${image}*`));
  }
  out.push(path.posix.join(res.vmhost.datastorePath, `${image}*`));
  return out;
}
