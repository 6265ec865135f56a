/**
 * Choosing a reader is one pure function of the source (and `-i` when given).
 */
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { DISK_EXTENSIONS, DiskReader } from './disk/disk-reader.js';
import { LibvirtReader } from './libvirt/libvirt-reader.js';
import { LibvirtXmlReader } from './libvirt/libvirtxml-reader.js';
import { READER_KINDS, type ReaderKind } from './model.js';
import { OvaReader } from './ovf/ova-reader.js';
import { OvfReader } from './ovf/ovf-reader.js';
import type { MetadataReader, ReaderOptionSpec } from './reader.js';
import { VmxReader } from './vmx/vmx-reader.js';

const BY_EXTENSION: Record<string, ReaderKind> = {
  '.vmx': 'vmx',
  '.ova': 'ova',
  '.ovf': 'ovf',
  '.xml': 'libvirtxml',
};

/** The input kind for a source when `-i` is not given. */
export function guessKind(source: readonly string[]): ReaderKind {
  const first = source[0];
  if (first === undefined) throw new UsageError('give a SOURCE to read (a file, or a domain name)');
  const ext = path.extname(first).toLowerCase();
  const kind = BY_EXTENSION[ext];
  if (kind && source.length === 1) return kind;
  if (source.every((s) => DISK_EXTENSIONS.includes(path.extname(s).toLowerCase()))) return 'disk';
  if (source.length === 1 && !first.includes('/') && ext === '') return 'libvirt';
  throw new UsageError(`cannot tell what kind of source '${source.join(' ')}' is`, {
    hint: `name it with -i ${READER_KINDS.join('|')}`,
  });
}

/** The reader of one input kind. */
export function readerFor(kind: ReaderKind): MetadataReader {
  switch (kind) {
    case 'vmx':
      return new VmxReader();
    case 'ova':
      return new OvaReader();
    case 'ovf':
      return new OvfReader();
    case 'libvirtxml':
      return new LibvirtXmlReader();
    case 'libvirt':
      return new LibvirtReader();
    case 'disk':
      return new DiskReader();
  }
}

/** Every reader's declared options, with the kinds that take each flag. */
export function readerOptionSpecs(): Map<string, { spec: ReaderOptionSpec; kinds: ReaderKind[] }> {
  const all = new Map<string, { spec: ReaderOptionSpec; kinds: ReaderKind[] }>();
  for (const kind of READER_KINDS) {
    for (const spec of readerFor(kind).optionSpecs ?? []) {
      const entry = all.get(spec.flag) ?? { spec, kinds: [] };
      entry.kinds.push(kind);
      all.set(spec.flag, entry);
    }
  }
  return all;
}
