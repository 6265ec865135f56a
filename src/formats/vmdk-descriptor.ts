/**
 * Just enough of VMware's VMDK format to follow a VM's disks: the text descriptor
 * (`createType`, `CID`/`parentCID`, `parentFileNameHint`, extent lines) and, for a binary
 * monolithic sparse file (magic `KDMV`), the descriptor embedded at the sector its header names.
 * Only the first 64 KiB of a text descriptor are read; a text file above 1 MiB is refused. Files
 * are only ever read: small ones with `node.readFile`, the start of large ones with `node.readFileRange`.
 */
import { MetadataError, NodeFileError } from '../errors.js';
import type { FileStat, Node } from '../node/node.js';
import { decodeText } from './text-encoding.js';

export const SECTOR = 512;
/** The part of a text descriptor that is parsed. */
export const HEAD_BYTES = 64 * 1024;
/** A text file above this is no descriptor. */
export const MAX_TEXT_BYTES = 1024 * 1024;

/** One extent line: `RW 41943040 SPARSE "disk-s001.vmdk"`. */
export interface VmdkExtent {
  access: 'RW' | 'RDONLY' | 'NOACCESS';
  sectors: number;
  /** FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, SESPARSE, VMFSRDM, VMFSRAW, ... (upper case). */
  type: string;
  /** The extent's file as written (relative to the descriptor's directory); none for ZERO. */
  file?: string | undefined;
  /** Line of the extent in the descriptor. */
  line: number;
}

/** What a descriptor says. */
export interface VmdkDescriptor {
  /** The file the descriptor was read from. */
  file: string;
  /** True when it was embedded in a binary sparse file (its extent is the file itself). */
  embedded: boolean;
  createType?: string | undefined;
  cid?: string | undefined;
  parentCid?: string | undefined;
  /** The parent of a delta disk, as written. */
  parentFileNameHint?: string | undefined;
  /** Line of `parentFileNameHint` (in the embedded text for a sparse file). */
  parentHintLine?: number | undefined;
  extents: VmdkExtent[];
}

/** The fields of a sparse (`KDMV`) header this reader uses. */
export interface SparseHeader {
  version: number;
  capacitySectors: number;
  /** Sector of the embedded descriptor; 0 when there is none (an extent of a split disk). */
  descriptorOffset: number;
  /** Its size in sectors. */
  descriptorSize: number;
}

/** Disk formats that are not VMDK, by their magic, for a helpful message. */
const OTHER_MAGICS: [string, string][] = [
  ['QFI\xfb', 'a qcow2 image'],
  ['conectix', 'a VHD image'],
  ['vhdxfile', 'a VHDX image'],
  ['<<< ', 'a VirtualBox VDI image'],
  ['COWD', 'a VMFS sparse extent (COWD), not a descriptor'],
];

function u64(buf: Buffer, at: number, file: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MetadataError(file, `sparse VMDK header: field at byte ${at} is out of range`);
  }
  return Number(v);
}

/**
 * Reads the header of a binary monolithic sparse VMDK.
 * @returns undefined when `head` does not start with the `KDMV` magic
 */
export function parseSparseHeader(head: Buffer, file: string): SparseHeader | undefined {
  if (head.length < 4 || head.toString('latin1', 0, 4) !== 'KDMV') return undefined;
  if (head.length < 44) throw new MetadataError(file, 'sparse VMDK header is truncated');
  return {
    version: head.readUInt32LE(4),
    capacitySectors: u64(head, 12, file),
    descriptorOffset: u64(head, 28, file),
    descriptorSize: u64(head, 36, file),
  };
}

const EXTENT = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$/;
const KEY_VALUE = /^([A-Za-z][\w.]*)\s*=\s*(.*)$/;

function unquote(v: string): string {
  const t = v.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

/**
 * Parses descriptor text. Unknown lines are ignored (the DDB holds many); a text with neither
 * `createType` nor an extent is not a descriptor.
 * @throws MetadataError naming the file (and line) when it is not a VMDK descriptor
 */
export function parseVmdkDescriptor(text: string, file: string, embedded = false): VmdkDescriptor {
  const d: VmdkDescriptor = { file, embedded, extents: [] };
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const s = raw.replace(/\r$/, '').trim();
    if (s === '' || s.startsWith('#')) return;
    const ext = EXTENT.exec(s);
    if (ext) {
      const sectors = Number(ext[2]);
      if (!Number.isSafeInteger(sectors)) {
        throw new MetadataError(file, 'extent size is out of range', { line });
      }
      d.extents.push({
        access: ext[1] as VmdkExtent['access'],
        sectors,
        type: (ext[3] ?? '').toUpperCase(),
        file: ext[4],
        line,
      });
      return;
    }
    const kv = KEY_VALUE.exec(s);
    if (!kv || kv[1] === undefined || kv[2] === undefined) return;
    const value = unquote(kv[2]);
    switch (kv[1].toLowerCase()) {
      case 'createtype':
        d.createType = value;
        break;
      case 'cid':
        d.cid = value.toLowerCase();
        break;
      case 'parentcid':
        d.parentCid = value.toLowerCase();
        break;
      case 'parentfilenamehint':
        if (value !== '') {
          d.parentFileNameHint = value;
          d.parentHintLine = line;
        }
        break;
    }
  });
  if (d.createType === undefined && d.extents.length === 0) {
    throw new MetadataError(file, 'not a VMDK descriptor (no createType, no extent lines)');
  }
  return d;
}

/** Virtual size in bytes: the extents' sizes added up; undefined when there are none. */
export function capacityOf(d: VmdkDescriptor): number | undefined {
  if (d.extents.length === 0) return undefined;
  const bytes = d.extents.reduce((sum, e) => sum + e.sectors, 0) * SECTOR;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Reads at most `count` sectors from sector `start`: the bounded read for large files and
 * symlinks (which `stat` does not follow), never the whole file.
 * @throws MetadataError naming the file when it cannot be read
 */
export async function readSectors(
  node: Node,
  file: string,
  start: number,
  count: number,
): Promise<Buffer> {
  try {
    return await node.readFileRange(file, start * SECTOR, count * SECTOR);
  } catch (e) {
    if (!(e instanceof NodeFileError)) throw e;
    throw new MetadataError(file, `cannot read: ${e.message}`, { cause: e });
  }
}

/** Decodes descriptor bytes: cut at the first NUL, in the `encoding` it names (UTF-8 else). */
function decodeDescriptor(bytes: Buffer, file: string): string {
  const nul = bytes.indexOf(0);
  const cut = nul < 0 ? bytes : bytes.subarray(0, nul);
  const label = /^\s*encoding\s*=\s*"([^"]*)"/m.exec(cut.toString('latin1'))?.[1] ?? 'utf-8';
  try {
    return decodeText(cut, label).text;
  } catch {
    throw new MetadataError(file, `descriptor encoding "${label}" is unknown`);
  }
}

/** The first control character no text descriptor holds, or -1. */
function binaryAt(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return i;
  }
  return -1;
}

async function readEmbedded(
  node: Node,
  file: string,
  head: Buffer,
  h: SparseHeader,
): Promise<VmdkDescriptor> {
  if (h.descriptorOffset === 0 || h.descriptorSize === 0) {
    throw new MetadataError(
      file,
      'sparse VMDK without an embedded descriptor (an extent of a split disk?)',
      { hint: 'name the disk by its descriptor file, the one that lists this extent' },
    );
  }
  if (h.descriptorSize * SECTOR > MAX_TEXT_BYTES) {
    throw new MetadataError(
      file,
      `embedded descriptor of ${h.descriptorSize} sectors is too large`,
    );
  }
  const start = h.descriptorOffset * SECTOR;
  const end = start + h.descriptorSize * SECTOR;
  const bytes =
    end <= head.length
      ? head.subarray(start, end)
      : await readSectors(node, file, h.descriptorOffset, h.descriptorSize);
  const text = decodeDescriptor(bytes, file);
  if (text.trim() === '') {
    throw new MetadataError(
      file,
      'sparse VMDK with an empty embedded descriptor (an extent of a split disk?)',
      {
        hint: 'name the disk by its descriptor file, the one that lists this extent',
      },
    );
  }
  return parseVmdkDescriptor(text, file, true);
}

/**
 * Reads the descriptor of a VMDK entry file: a text descriptor, or the one embedded in a binary
 * monolithic sparse file.
 * @param st the file's stat (the caller has checked it exists)
 * @throws MetadataError naming the file when it is not a VMDK descriptor or sparse VMDK
 */
export async function readVmdkDescriptor(
  node: Node,
  file: string,
  st: FileStat,
): Promise<VmdkDescriptor> {
  if (st.type === 'directory' || st.type === 'other') {
    throw new MetadataError(file, `not a regular file (${st.type})`);
  }
  const small = st.type === 'file' && st.size <= MAX_TEXT_BYTES;
  const head = small
    ? await node.readFile(file)
    : await readSectors(node, file, 0, HEAD_BYTES / SECTOR);
  const sparse = parseSparseHeader(head, file);
  if (sparse) return readEmbedded(node, file, head, sparse);
  const magic = head.toString('latin1', 0, 8);
  const other = OTHER_MAGICS.find(([m]) => magic.startsWith(m));
  if (other) throw new MetadataError(file, `not a VMDK descriptor: ${other[1]}`);
  const text = head.subarray(0, HEAD_BYTES);
  // qemu-img pads a text descriptor with NULs to a sector boundary: padding is not binary data.
  let end = text.length;
  while (end > 0 && text[end - 1] === 0) end--;
  const bad = end === 0 ? 0 : binaryAt(text.subarray(0, end));
  if (bad >= 0) {
    throw new MetadataError(
      file,
      `not a VMDK descriptor: binary data at byte ${bad} and no sparse VMDK header (KDMV)`,
    );
  }
  const tooBig =
    st.type === 'file'
      ? st.size > MAX_TEXT_BYTES
      : (await readSectors(node, file, 0, MAX_TEXT_BYTES / SECTOR + 1)).length > MAX_TEXT_BYTES;
  if (tooBig) {
    throw new MetadataError(file, 'not a VMDK descriptor: a text file larger than 1 MiB');
  }
  // A cut at 64 KiB may split the last line: drop it.
  const complete = head.length > HEAD_BYTES ? text.subarray(0, text.lastIndexOf(10) + 1) : text;
  return parseVmdkDescriptor(decodeDescriptor(complete, file), file);
}
