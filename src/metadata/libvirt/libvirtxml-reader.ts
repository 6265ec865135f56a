/**
 * The `libvirtxml` reader: a libvirt domain XML file (from `virsh dumpxml`, or written by a Xen
 * toolstack) on the node. Disk paths are the node's paths; a relative path is taken relative to
 * the XML file's directory. Every disk file must exist (it is what gets converted); a missing
 * CD-ROM image is only a note. Storage-pool volumes cannot be resolved without a libvirt
 * connection: use the `libvirt` reader for those.
 */
import * as path from 'node:path';
import { MetadataError, UsageError } from '../../errors.js';
import type { SourceGuest } from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptions } from '../reader.js';
import { validateGuest } from '../validate.js';
import { parseDomainXml } from './domain-xml.js';

/** The largest domain XML read (the XML parser refuses more anyway). */
const MAX_XML_FILE_BYTES = 64 * 1024 * 1024;

/** Reads a libvirt domain XML file on the node (`-i libvirtxml FILE`). */
export class LibvirtXmlReader implements MetadataReader {
  readonly kind = 'libvirtxml' as const;

  /** One argument: the XML file. */
  check(source: string[], _options: ReaderOptions): void {
    if (source.length !== 1 || !source[0]) {
      throw new UsageError(
        `-i libvirtxml takes exactly one libvirt domain XML file, got ${source.length} argument(s)`,
        { hint: 'e.g. `virsh dumpxml GUEST > guest.xml`, then pass guest.xml' },
      );
    }
    if (source[0].includes('\0')) throw new UsageError('-i libvirtxml: the file name has a NUL');
  }

  /** Reads the XML through `ctx.node`, checks its disks exist there, validates the guest. */
  async read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, options);
    const file = xmlPath(source[0] as string, ctx);
    const st = await ctx.node.stat(file);
    if (!st) throw new MetadataError(file, 'no such file');
    if (st.type === 'directory') throw new MetadataError(file, 'is a directory, expected XML');
    if (st.size > MAX_XML_FILE_BYTES) {
      throw new MetadataError(file, `${st.size} bytes: too large for a domain XML file`);
    }
    const text = (await ctx.node.readFile(file)).toString('utf8');
    const { guest, sources } = parseDomainXml(text, file, { kind: 'libvirtxml', source: file });
    const dir = path.posix.dirname(file);
    for (const ref of sources) {
      const entry = ref.device === 'disk' ? guest.disks[ref.index] : guest.cdroms[ref.index];
      if (!entry?.path) continue;
      const what = `${ref.device === 'disk' ? 'disk' : 'cd-rom'} ${ref.slot}`;
      if (ref.kind === 'volume') {
        guest.notes.push(
          `${what}: storage volume "${ref.volume}" in pool "${ref.pool}" is not resolved from an XML file`,
        );
        continue;
      }
      if (ref.kind === 'datastore') {
        guest.notes.push(`${what}: "${entry.path}" is on an ESX datastore: not checked`);
        continue;
      }
      if (ref.kind !== 'file' && ref.kind !== 'block') continue;
      entry.path = path.posix.resolve(dir, entry.path);
      if (await ctx.node.stat(entry.path)) continue;
      if (ref.device === 'cdrom') {
        guest.notes.push(`${what}: ${entry.path} does not exist`);
        continue;
      }
      throw new MetadataError(file, `${what}: ${entry.path} does not exist`, {
        hint: 'copy the disk image there, or edit the path in the XML file',
      });
    }
    return validateGuest(guest, file);
  }
}

function xmlPath(given: string, ctx: ReaderContext): string {
  if (path.posix.isAbsolute(given)) return path.posix.normalize(given);
  if (ctx.node.isLocal) return path.resolve(given);
  throw new UsageError(
    `-i libvirtxml '${given}': give an absolute path for a file on ${ctx.node.name}`,
  );
}
