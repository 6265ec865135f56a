/**
 * VMDK snapshot chains for the .vmx reader: a disk's descriptor is read, its extents checked,
 * and `parentFileNameHint` followed down to the base disk. Descriptors are only read; the kind
 * of disk (createType) yields a note when the model cannot say it.
 */
import * as path from 'node:path';
import { MetadataError } from '../../errors.js';
import { readVmdkDescriptor, type VmdkDescriptor } from '../../formats/vmdk-descriptor.js';
import type { Node } from '../../node/node.js';
import { printable, type VmxFile } from './parse-vmx.js';
import { isWindowsPath, resolveFrom } from './vmx-paths.js';
import { type Slot, slotEntry } from './vmx-slots.js';

/** Most parents a snapshot disk may have. */
export const MAX_CHAIN_DEPTH = 255;

const KNOWN_CREATE_TYPES = new Set(
  [
    'monolithicSparse',
    'monolithicFlat',
    'twoGbMaxExtentSparse',
    'twoGbMaxExtentFlat',
    'streamOptimized',
    'vmfs',
    'vmfsThin',
    'vmfsSparse',
    'seSparse',
    'vsanSparse',
    'vmfsRaw',
  ].map((t) => t.toLowerCase()),
);
const RDM_CREATE_TYPES = new Set(['vmfsrawdevicemap', 'vmfspassthroughrawdevicemap']);
const HOST_DISK_CREATE_TYPES = new Set(['fulldevice', 'partitioneddevice']);

/** Notes on the kind of disk a descriptor describes. */
export function createTypeNote(slot: string, d: VmdkDescriptor): string | undefined {
  const t = d.createType;
  if (t === undefined) return undefined;
  const lower = t.toLowerCase();
  if (RDM_CREATE_TYPES.has(lower)) {
    return `${slot}: raw device mapping (${t}): the data is on a LUN, not in the file`;
  }
  if (HOST_DISK_CREATE_TYPES.has(lower))
    return `${slot}: a physical disk of the source host (${t})`;
  if (!KNOWN_CREATE_TYPES.has(lower)) return `${slot}: unknown VMDK createType "${printable(t)}"`;
  return undefined;
}

/** Checks that a text descriptor's extent files exist (they are only stat'ed, never read). */
async function checkExtents(node: Node, d: VmdkDescriptor, notes: Set<string>): Promise<void> {
  if (d.embedded) return;
  for (const e of d.extents) {
    if (e.file === undefined || e.type === 'ZERO') continue;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e.file)) {
      notes.add(`${path.posix.basename(d.file)}: extent ${printable(e.file)} is not a file`);
      continue;
    }
    const abs = resolveFrom(path.posix.dirname(d.file), e.file);
    if (!(await node.stat(abs))) {
      throw new MetadataError(d.file, `extent ${abs} does not exist on ${node.name}`, {
        line: e.line,
      });
    }
  }
}

/** A disk and the snapshot chain below it. */
export interface Chain {
  top: VmdkDescriptor;
  backing: string[];
}

/** Reads the disk at `top` and follows `parentFileNameHint` down to the base. */
export async function followChain(
  node: Node,
  vmx: VmxFile,
  slot: Slot,
  top: string,
  notes: Set<string>,
): Promise<Chain> {
  const at = slotEntry(vmx, slot);
  const st = await node.stat(top);
  if (!st) {
    throw new MetadataError(vmx.file, `${slot.name}: disk ${top} does not exist on ${node.name}`, {
      line: at?.line,
    });
  }
  let d = await readVmdkDescriptor(node, top, st);
  await checkExtents(node, d, notes);
  const first = d;
  const seen = [top];
  const backing: string[] = [];
  while (d.parentFileNameHint !== undefined) {
    const hint = d.parentFileNameHint;
    const line = d.embedded ? undefined : d.parentHintLine;
    if (isWindowsPath(hint)) {
      throw new MetadataError(d.file, `parentFileNameHint "${printable(hint)}" is a Windows path`, {
        line,
        hint: 'copy the parent disk next to this one and make the hint relative',
      });
    }
    const parent = resolveFrom(path.posix.dirname(d.file), hint);
    if (seen.includes(parent)) {
      throw new MetadataError(d.file, `snapshot chain loops: ${[...seen, parent].join(' -> ')}`, {
        line,
      });
    }
    if (backing.length >= MAX_CHAIN_DEPTH) {
      throw new MetadataError(
        vmx.file,
        `${slot.name}: snapshot chain of ${top} is deeper than ${MAX_CHAIN_DEPTH} disks`,
        { line: at?.line },
      );
    }
    const pst = await node.stat(parent);
    if (!pst) {
      throw new MetadataError(
        d.file,
        `parent disk ${parent} (parentFileNameHint) does not exist on ${node.name}`,
        { line, hint: `it is in the snapshot chain of ${slot.name} in ${vmx.file}` },
      );
    }
    const p = await readVmdkDescriptor(node, parent, pst);
    if (d.parentCid && p.cid && d.parentCid !== p.cid) {
      notes.add(
        `${slot.name}: parentCID of ${path.posix.basename(d.file)} does not match the CID of ` +
          `${path.posix.basename(parent)} (the parent changed after the snapshot)`,
      );
    }
    await checkExtents(node, p, notes);
    seen.push(parent);
    backing.push(parent);
    d = p;
  }
  return { top: first, backing };
}
