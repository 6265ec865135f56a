/**
 * The OVF envelope: the descriptor types, the namespace check, and the reading of the
 * `References`, `DiskSection`, `DeploymentOptionSection` and the one `VirtualSystem`
 * ({@link parseOvfDescriptor}).
 */
import { MetadataError } from '../../errors.js';
import { attr, parseUntrustedXml } from '../../formats/xml.js';
import type { ArchiveMember, SourceOrigin } from '../model.js';
import { checkRelativeName } from './manifest.js';
import {
  attrOf,
  type El,
  isEl,
  kid,
  kids,
  localName,
  stripPrefixes,
  unitMultiplier,
  wholeNumber,
} from './ovf-xml.js';

export const OVF_NAMESPACE_1 = 'http://schemas.dmtf.org/ovf/envelope/1';
export const OVF_NAMESPACE_2 = 'http://schemas.dmtf.org/ovf/envelope/2';
const VMWARE_NAMESPACE = 'http://www.vmware.com/schema/ovf';
const VIRTUALBOX_NAMESPACE = 'http://www.virtualbox.org/ovf/machine';

/** A `References/File`. */
export interface OvfFileRef {
  id: string;
  /** Relative to the descriptor's directory; checked (no `..`, not absolute, no URL) and normalized. */
  href: string;
  /** `ovf:size`: the file's size as stored. */
  size?: number | undefined;
  compression?: 'gzip' | undefined;
}

/** A `DiskSection/Disk`. */
export interface OvfDiskDef {
  id: string;
  fileRef?: string | undefined;
  capacityBytes?: number | undefined;
  formatUrl?: string | undefined;
  parentRef?: string | undefined;
}

/** A parsed descriptor: the envelope's tables and its one virtual system (prefixes stripped). */
export interface OvfDescriptor {
  /** Names the descriptor in messages: the `.ovf` path, or `archive.ova:member.ovf`. */
  file: string;
  version: 1 | 2;
  /** The envelope declares VMware's `vmw:` namespace. */
  vmwareNamespace: boolean;
  /** The envelope declares VirtualBox's `vbox:` namespace. */
  virtualBoxNamespace: boolean;
  files: Map<string, OvfFileRef>;
  disks: Map<string, OvfDiskDef>;
  /** The `DeploymentOptionSection` configuration in force (the default one), if any. */
  configuration?: string | undefined;
  system: El;
  /** What the envelope held that could not be mapped. */
  notes: string[];
}

/** Where a referenced file is. */
export interface OvfLocation {
  path: string;
  inArchive?: ArchiveMember | undefined;
}

/** What `ovfToGuest` (ovf-guest.ts) needs to know about where the descriptor came from. */
export interface OvfSource {
  origin: SourceOrigin;
  /** The file a descriptor `href` names, or undefined when it is absent. */
  locate(href: string): OvfLocation | undefined;
  /** Where a missing file was looked for, for messages: `not found: /dir/x.vmdk`. */
  missing(href: string): string;
}

/** How a referenced file is used; a reader may need to treat the kinds differently. */
export type OvfFileRole = 'disk' | 'chain' | 'cdrom';

function checkHref(href: string, id: string, file: string): string {
  const checked = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(href)
    ? { refused: 'a URL' }
    : checkRelativeName(href);
  if ('refused' in checked) {
    throw new MetadataError(
      file,
      `File ${id} has href ${JSON.stringify(href)}: ${checked.refused} is refused (only files next to the OVF are read)`,
    );
  }
  return checked.name;
}

function parseReferences(env: El, file: string): Map<string, OvfFileRef> {
  const files = new Map<string, OvfFileRef>();
  for (const f of kids(kid(env, 'References'), 'File')) {
    const id = attrOf(f, 'id');
    const rawHref = attrOf(f, 'href');
    if (!id || !rawHref)
      throw new MetadataError(file, 'a References/File lacks ovf:id or ovf:href');
    if (files.has(id)) throw new MetadataError(file, `File id "${id}" is used twice`);
    if (attrOf(f, 'chunkSize') !== undefined) {
      throw new MetadataError(
        file,
        `File ${id} ("${rawHref}") is split in chunks (ovf:chunkSize): chunked files are not supported`,
        { hint: 'join the chunks with ovftool, or export again without chunking' },
      );
    }
    const compression = attrOf(f, 'compression');
    if (compression !== undefined && compression !== 'gzip' && compression !== 'identity') {
      throw new MetadataError(file, `File ${id} has unknown ovf:compression "${compression}"`);
    }
    const size = attrOf(f, 'size');
    files.set(id, {
      id,
      href: checkHref(rawHref, id, file),
      size: size === undefined ? undefined : wholeNumber(size, `File ${id} ovf:size`, file),
      compression: compression === 'gzip' ? 'gzip' : undefined,
    });
  }
  return files;
}

function parseDisks(
  env: El,
  files: Map<string, OvfFileRef>,
  file: string,
  notes: string[],
): Map<string, OvfDiskDef> {
  const disks = new Map<string, OvfDiskDef>();
  const sections = [...kids(env, 'DiskSection'), ...kids(env, 'VirtualDiskSection')];
  for (const d of sections.flatMap((s) => kids(s, 'Disk'))) {
    const id = attrOf(d, 'diskId');
    if (!id) throw new MetadataError(file, 'a DiskSection/Disk lacks ovf:diskId');
    if (disks.has(id)) throw new MetadataError(file, `disk id "${id}" is used twice`);
    const fileRef = attrOf(d, 'fileRef');
    if (fileRef !== undefined && !files.has(fileRef)) {
      throw new MetadataError(
        file,
        `Disk ${id} refers to File "${fileRef}", which is not in the References`,
      );
    }
    const capacity = attrOf(d, 'capacity');
    const unitsText = attrOf(d, 'capacityAllocationUnits') ?? 'byte';
    let capacityBytes: number | undefined;
    if (capacity !== undefined && /^\$\{.*\}$/.test(capacity)) {
      notes.push(
        `disk ${id}: capacity is the property ${capacity}, not a number: capacity unknown`,
      );
    } else if (capacity !== undefined) {
      const units = unitMultiplier(unitsText);
      if (units === undefined) {
        throw new MetadataError(
          file,
          `Disk ${id} has unknown capacityAllocationUnits "${unitsText}"`,
        );
      }
      capacityBytes = wholeNumber(capacity, `Disk ${id} capacity`, file) * units;
    }
    disks.set(id, {
      id,
      fileRef,
      capacityBytes,
      formatUrl: attrOf(d, 'format'),
      parentRef: attrOf(d, 'parentRef'),
    });
  }
  return disks;
}

function virtualSystems(el: El): El[] {
  return [
    ...kids(el, 'VirtualSystem'),
    ...kids(el, 'VirtualSystemCollection').flatMap((c) => virtualSystems(c)),
  ];
}

function defaultConfiguration(env: El, notes: string[]): string | undefined {
  const configs = kids(kid(env, 'DeploymentOptionSection'), 'Configuration');
  if (configs.length === 0) return undefined;
  const chosen = configs.find((c) => attrOf(c, 'default') === 'true') ?? configs[0];
  const id = attrOf(chosen, 'id');
  if (configs.length > 1) {
    notes.push(
      `deployment options ${configs.map((c) => attrOf(c, 'id')).join(', ')}: the default "${id}" is read`,
    );
  }
  return id;
}

/**
 * Parses and checks an OVF descriptor's envelope.
 * @param file names the descriptor in messages.
 * @throws MetadataError for broken or hostile XML (entities, DOCTYPE), a root that is not an OVF
 *   1.x/2.x Envelope, unsafe file references, dangling ids, or not exactly one VirtualSystem.
 */
export function parseOvfDescriptor(text: string, file: string): OvfDescriptor {
  const raw = parseUntrustedXml(text, file);
  const rootKey = Object.keys(raw).find((k) => localName(k) === 'Envelope');
  const rootRaw = rootKey === undefined ? undefined : raw[rootKey];
  if (rootKey === undefined || !isEl(rootRaw)) {
    throw new MetadataError(file, 'not an OVF descriptor: the root element is not an <Envelope>');
  }
  const prefix = rootKey.includes(':') ? rootKey.slice(0, rootKey.indexOf(':')) : undefined;
  const ns = attr(rootRaw, prefix === undefined ? 'xmlns' : `xmlns:${prefix}`);
  let version: 1 | 2;
  if (ns === OVF_NAMESPACE_1) version = 1;
  else if (ns === OVF_NAMESPACE_2) version = 2;
  else {
    throw new MetadataError(
      file,
      `not an OVF 1.x or 2.x descriptor: the Envelope's namespace is ${ns === undefined ? 'not declared' : JSON.stringify(ns)}`,
    );
  }
  const declared = Object.entries(rootRaw)
    .filter(([k]) => k.startsWith('@_xmlns'))
    .map(([, v]) => String(v));
  const env = stripPrefixes(rootRaw) as El;
  const notes: string[] = [];
  const files = parseReferences(env, file);
  const disks = parseDisks(env, files, file, notes);
  const systems = virtualSystems(env);
  if (systems.length !== 1) {
    throw new MetadataError(
      file,
      systems.length === 0
        ? 'no VirtualSystem in the descriptor'
        : `${systems.length} VirtualSystems in the descriptor: only one guest per OVF is supported`,
    );
  }
  if (kids(env, 'SharedDiskSection').length > 0) notes.push('SharedDiskSection not converted');
  return {
    file,
    version,
    vmwareNamespace: declared.includes(VMWARE_NAMESPACE),
    virtualBoxNamespace: declared.includes(VIRTUALBOX_NAMESPACE),
    files,
    disks,
    configuration: defaultConfiguration(env, notes),
    system: systems[0] as El,
    notes,
  };
}
