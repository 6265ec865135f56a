/**
 * The .vmx reader: a VMware Workstation, Fusion or ESXi configuration file, and the VMDK
 * descriptors its disks name (snapshot deltas followed down to the base). Every file is only
 * read, on the node that holds it; anything the model cannot say goes into `notes`.
 */
import * as path from 'node:path';
import { MetadataError, UsageError } from '../../errors.js';
import { MAX_TEXT_BYTES, readSectors, SECTOR } from '../../formats/vmdk-descriptor.js';
import type { Node } from '../../node/node.js';
import type { SourceGuest } from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptions } from '../reader.js';
import { normalizeUuid, validateGuest } from '../validate.js';
import { parseVmx, printable } from './parse-vmx.js';
import { applyBootOrder, readStorage } from './vmx-devices.js';
import { readNics } from './vmx-nics.js';
import { unmodeledNotes } from './vmx-notes.js';
import { cpuAndMemory, readFirmware, readSound, readVideo } from './vmx-platform.js';

export { MAX_CHAIN_DEPTH } from './vmx-chain.js';

/** A .vmx above this is refused (real ones are a few KiB). */
const MAX_VMX_BYTES = 4 * MAX_TEXT_BYTES;

/** Reads the .vmx bytes, refusing what is not a small regular file. */
async function readVmxBytes(node: Node, file: string): Promise<Buffer> {
  const st = await node.stat(file);
  if (!st) throw new MetadataError(file, `no such file on ${node.name}`);
  if (st.type === 'directory' || st.type === 'other') {
    throw new MetadataError(file, `not a regular file (${st.type})`);
  }
  if (st.type === 'file' && st.size > MAX_VMX_BYTES) {
    throw new MetadataError(file, `${st.size} bytes is too large for a .vmx`);
  }
  // A symlink's size is not its target's: read a bounded amount.
  const data =
    st.type === 'file'
      ? await node.readFile(file)
      : await readSectors(node, file, 0, MAX_VMX_BYTES / SECTOR + 1);
  if (data.length > MAX_VMX_BYTES) {
    throw new MetadataError(file, 'more than 4 MiB: too large for a .vmx');
  }
  return data;
}

/** Reads a VMware .vmx file and the disks it names. */
export class VmxReader implements MetadataReader {
  readonly kind = 'vmx' as const;

  /** One .vmx path. */
  check(source: string[], _options: ReaderOptions): void {
    if (source.length !== 1) {
      throw new UsageError(`-i vmx: give exactly one .vmx file (got ${source.length})`);
    }
    if ((source[0] ?? '').trim() === '') throw new UsageError('-i vmx: the .vmx path is empty');
  }

  /** Reads the .vmx on `ctx.node`, follows its disks' snapshot chains, and validates. */
  async read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, options);
    const given = source[0] ?? '';
    const file = ctx.node.isLocal ? path.resolve(given) : path.posix.normalize(given);
    if (!path.posix.isAbsolute(file)) {
      throw new UsageError(`-i vmx: '${given}' must be an absolute path on ${ctx.node.name}`);
    }
    const vmx = parseVmx(await readVmxBytes(ctx.node, file), file);
    const notes = new Set<string>(vmx.notes);
    const cpu = cpuAndMemory(vmx, notes);
    const { disks, cdroms } = await readStorage(ctx.node, vmx, notes);
    applyBootOrder(vmx, disks, notes);
    const nics = readNics(vmx, notes);
    const video = readVideo(vmx);
    const sound = readSound(vmx, notes);
    const firmware = readFirmware(vmx, notes);
    unmodeledNotes(vmx, notes);
    const rawUuid = vmx.str('uuid.bios');
    const uuid = normalizeUuid(rawUuid);
    if (rawUuid !== undefined && !uuid)
      notes.add(`uuid.bios "${printable(rawUuid)}" is not a UUID`);
    const displayName = vmx.str('displayName')?.trim();
    const guest: SourceGuest = {
      name: displayName || path.posix.basename(file).replace(/\.vmx$/i, ''),
      hypervisor: 'vmware',
      firmware,
      ...cpu,
      osHint: vmx.str('guestOS')?.trim() || undefined,
      uuid,
      disks,
      cdroms,
      nics,
      video,
      sound,
      notes: [...notes],
      origin: { kind: 'vmx', source: file },
    };
    return validateGuest(guest, file);
  }
}
