/**
 * VMDK layouts: monolithicSparse, streamOptimized (one binary file with an embedded
 * descriptor), monolithicFlat, twoGbMaxExtentSparse/Flat and ESXi's vmfs (a text descriptor
 * plus extent files). The descriptor is the entry point; its extents are checked before
 * qemu-img opens anything: each must exist, stay in the descriptor's directory, and be as
 * large as the descriptor says.
 */
import * as path from 'node:path';
import { MetadataError } from '../errors.js';
import {
  MAX_TEXT_BYTES,
  parseSparseHeader,
  parseVmdkDescriptor,
  readSectors,
  readVmdkDescriptor,
  SECTOR,
  type VmdkDescriptor,
} from '../formats/vmdk-descriptor.js';
import type { Node } from '../node/node.js';
import { StorageError } from './errors.js';

/** createType values this layer knows. */
export const VMDK_SUBFORMATS = [
  'monolithicSparse',
  'monolithicFlat',
  'streamOptimized',
  'twoGbMaxExtentSparse',
  'twoGbMaxExtentFlat',
  'vmfs',
  'vmfsSparse',
  'vmfsThin',
  'seSparse',
] as const;
export type VmdkSubformat = (typeof VMDK_SUBFORMATS)[number];

/** One extent file of a VMDK. */
export interface VmdkExtentFile {
  /** Absolute path on the node. */
  path: string;
  /** FLAT, SPARSE, VMFS, VMFSSPARSE, ... */
  type: string;
  sectors: number;
  /** Line in the descriptor (0 for the file of an embedded descriptor). */
  line: number;
  /** Size of the file in bytes. */
  sizeBytes: number;
}

/** What a VMDK is made of. */
export interface VmdkLayout {
  /** The descriptor file: the entry point. */
  descriptor: string;
  subformat: VmdkSubformat;
  /** True for monolithicSparse / streamOptimized: one file, descriptor inside. */
  embedded: boolean;
  extents: VmdkExtentFile[];
  /** Every file of the disk: the descriptor first, then the extents not equal to it. */
  files: string[];
  /** Sum of the extents' sectors, in bytes. */
  virtualBytes: number;
  /** The parent of a delta disk, as written, if any. */
  parentFileNameHint?: string | undefined;
}

function strip(e: MetadataError, file: string): string {
  return e.message.startsWith(`${file}`)
    ? e.message.slice(file.length).replace(/^:?\d*:\s*/, '')
    : e.message;
}

/**
 * A text descriptor followed only by NUL padding (qemu-img convert pads it to a sector) is
 * parsed here; everything else goes to the metadata layer's reader.
 */
function paddedText(buf: Buffer, file: string): VmdkDescriptor | undefined {
  const nul = buf.indexOf(0);
  if (nul <= 0 || buf.subarray(nul).some((b) => b !== 0)) return undefined;
  const text = buf.subarray(0, nul);
  if (text.some((b) => b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) return undefined;
  return parseVmdkDescriptor(text.toString('utf8'), file);
}

/** A sparse file shorter than its header says is truncated. */
function checkSparseLength(head: Buffer, file: string, size: number): void {
  const h = parseSparseHeader(head, file);
  if (!h) return;
  const need = (h.descriptorOffset + h.descriptorSize) * SECTOR;
  if (size < need || size < SECTOR) {
    throw new StorageError(
      file,
      `sparse VMDK is truncated: ${size} bytes, its header places the descriptor up to byte ${need}`,
    );
  }
}

async function descriptorOf(node: Node, file: string): Promise<VmdkDescriptor> {
  const st = await node.stat(file);
  if (!st) throw new StorageError(file, 'VMDK does not exist');
  try {
    if (st.type === 'file') {
      const head =
        st.size <= MAX_TEXT_BYTES ? await node.readFile(file) : await readSectors(node, file, 0, 1);
      checkSparseLength(head, file, st.size);
      if (st.size <= MAX_TEXT_BYTES && !head.subarray(0, 4).equals(Buffer.from('KDMV'))) {
        const d = paddedText(head, file);
        if (d) return d;
      }
    }
    return await readVmdkDescriptor(node, file, st);
  } catch (e) {
    if (e instanceof MetadataError) {
      throw new StorageError(file, strip(e, file), { cause: e, hint: e.hint });
    }
    throw e;
  }
}

function subformatOf(d: VmdkDescriptor): VmdkSubformat {
  const ct = d.createType ?? '';
  const known = VMDK_SUBFORMATS.find((s) => s.toLowerCase() === ct.toLowerCase());
  if (!known) {
    throw new StorageError(d.file, `unsupported VMDK createType "${ct}"`, {
      hint: `supported: ${VMDK_SUBFORMATS.join(', ')}`,
    });
  }
  return known;
}

async function checkSparse(node: Node, descriptor: string, ext: VmdkExtentFile): Promise<void> {
  const head = await readSectors(node, ext.path, 0, 1);
  const magic = head.toString('latin1', 0, 4);
  if (ext.type === 'VMFSSPARSE' && magic === 'COWD') return;
  if (ext.type === 'SESPARSE') return;
  try {
    if (!parseSparseHeader(head, ext.path)) throw new Error('no KDMV');
  } catch {
    throw new StorageError(
      descriptor,
      `extent ${path.basename(ext.path)} (line ${ext.line}) is not a sparse VMDK extent ` +
        '(no KDMV header)',
    );
  }
}

async function extentFile(
  node: Node,
  d: VmdkDescriptor,
  name: string,
  type: string,
  sectors: number,
  line: number,
): Promise<VmdkExtentFile> {
  const dir = path.dirname(d.file);
  if (path.isAbsolute(name) || name.split(/[\\/]/).includes('..')) {
    throw new StorageError(
      d.file,
      `extent "${name}" (line ${line}) is outside the descriptor's directory; refused`,
      { hint: 'extents must be files next to the descriptor' },
    );
  }
  const p = path.join(dir, name);
  const st = await node.stat(p);
  if (!st) {
    throw new StorageError(d.file, `extent "${name}" (line ${line}) is missing: ${p}`, {
      hint: 'copy every file of the disk: the descriptor and all its extents',
    });
  }
  if (st.type !== 'file') {
    throw new StorageError(
      d.file,
      `extent "${name}" (line ${line}) is not a regular file (${st.type})`,
    );
  }
  const ext: VmdkExtentFile = { path: p, type, sectors, line, sizeBytes: st.size };
  if (type === 'FLAT' || type === 'VMFS') {
    if (st.size < sectors * SECTOR) {
      throw new StorageError(
        d.file,
        `extent "${name}" (line ${line}) is truncated: ${st.size} bytes, the descriptor says ` +
          `${sectors * SECTOR}`,
      );
    }
  } else if (type.includes('SPARSE')) {
    await checkSparse(node, d.file, ext);
  } else {
    throw new StorageError(d.file, `extent "${name}" (line ${line}) has unsupported type ${type}`);
  }
  return ext;
}

/**
 * Reads a VMDK's descriptor and checks its extents.
 * @param file the descriptor (or the single file of a monolithicSparse/streamOptimized disk)
 * @throws StorageError naming the descriptor (and line) when it is not a VMDK, an extent is
 *   missing, truncated, of the wrong kind or outside the descriptor's directory
 */
export async function readVmdk(node: Node, file: string): Promise<VmdkLayout> {
  const d = await descriptorOf(node, file);
  const subformat = subformatOf(d);
  const extents: VmdkExtentFile[] = [];
  if (d.embedded) {
    const st = await node.stat(file);
    extents.push({
      path: file,
      type: 'SPARSE',
      sectors: d.extents.reduce((s, e) => s + e.sectors, 0),
      line: 0,
      sizeBytes: st?.size ?? 0,
    });
  } else {
    if (d.extents.length === 0) throw new StorageError(file, 'VMDK descriptor lists no extent');
    for (const e of d.extents) {
      if (e.type === 'ZERO') continue;
      if (!e.file) throw new StorageError(file, `extent on line ${e.line} names no file`);
      extents.push(await extentFile(node, d, e.file, e.type, e.sectors, e.line));
    }
  }
  const files = [file, ...extents.map((e) => e.path).filter((p) => p !== file)];
  const virtualBytes = d.extents.reduce((s, e) => s + e.sectors, 0) * SECTOR;
  return {
    descriptor: file,
    subformat,
    embedded: d.embedded,
    extents,
    files,
    virtualBytes,
    parentFileNameHint: d.parentFileNameHint,
  };
}
