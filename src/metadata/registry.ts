/**
 * Choosing a reader is one pure function of the source (and `-i` when given), over the readers
 * registered in the container (TOKENS.MetadataReader).
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

/** One instance of every reader, for library use without a container. */
export function defaultReaders(): MetadataReader[] {
  return [
    new VmxReader(),
    new OvaReader(),
    new OvfReader(),
    new LibvirtXmlReader(),
    new LibvirtReader(),
    new DiskReader(),
  ];
}

/**
 * The reader of one input kind among `readers` (those registered in the container; every
 * built-in one when not given): one pure choice. The last one registered for a kind wins, so
 * registering another reader of a kind replaces it.
 * @throws UsageError when no reader of that kind is registered
 */
export function readerFor(
  kind: ReaderKind,
  readers: readonly MetadataReader[] = defaultReaders(),
): MetadataReader {
  const reader = readers.findLast((r) => r.kind === kind);
  if (!reader) {
    throw new UsageError(`-i ${kind}: no reader of this kind is registered`, {
      hint: `registered: ${[...new Set(readers.map((r) => r.kind))].join(', ') || 'none'}`,
    });
  }
  return reader;
}

/** Every reader's declared options, with the kinds that take each flag. */
export function readerOptionSpecs(
  readers: readonly MetadataReader[] = defaultReaders(),
): Map<string, { spec: ReaderOptionSpec; kinds: ReaderKind[] }> {
  const all = new Map<string, { spec: ReaderOptionSpec; kinds: ReaderKind[] }>();
  for (const kind of READER_KINDS) {
    const reader = readers.findLast((r) => r.kind === kind);
    for (const spec of reader?.optionSpecs ?? []) {
      const entry = all.get(spec.flag) ?? { spec, kinds: [] };
      entry.kinds.push(kind);
      all.set(spec.flag, entry);
    }
  }
  return all;
}
