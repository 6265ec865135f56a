/**
 * How the conversion reaches the guest's disks (the storage stage of the pipeline):
 * - copy: a qcow2 overlay over the source (in --snapshot-dir, default the output directory)
 *   takes the conversion's writes; at the end it is flattened into the output. The source is
 *   only read, and the appliance can start at once instead of after a full copy.
 * - snapshot: the same overlay, kept as the output (qcow2 backed by the source).
 * - in-place: the source itself is converted (only when asked for).
 * Every temporary file is registered with the run's cleanup stack where it is made; outputs
 * are written under a temporary name and moved into place without replacing anything.
 */
import * as path from 'node:path';
import { tempSibling } from '../node/temp-name.js';
import type { CleanupHandle, CleanupStack } from '../run/cleanup.js';
import type { ImageFormat, ImageRef } from '../storage/image-format.js';
import { isImageFormat } from '../storage/image-format.js';
import type { ArchivedImage, ProgressEvent, QemuImg } from '../storage/qemu-img.js';
import { ConversionError } from './errors.js';
import type { TargetDisk } from './target.js';

export const CONVERT_STORAGE = ['copy', 'snapshot', 'in-place'] as const;
export type ConvertStorage = (typeof CONVERT_STORAGE)[number];

/** A disk between prepare and finish. */
export interface WorkDisk {
  target: TargetDisk;
  source: ImageRef;
  /** What the appliance opens read-write. */
  work: ImageRef;
  /** Makes the output final; returns it. */
  finish(onProgress?: (e: ProgressEvent) => void): Promise<ImageRef>;
}

/**
 * The disk inside an uncompressed archive (an OVA's tar member read in place), or undefined
 * when the source is a file of its own (also a member the reader extracted).
 */
export function archivedImage(t: TargetDisk): ArchivedImage | undefined {
  const d = t.source;
  const a = d.inArchive;
  if (!a || d.path !== a.archive) return undefined;
  if (a.offset === undefined) {
    throw new ConversionError(`${a.archive}: disk ${a.member} is compressed inside the archive`, {
      hint: 'extract the archive (tar -xf / unzip) and convert its .ovf',
    });
  }
  return {
    archive: a.archive,
    member: a.member,
    offset: a.offset,
    size: a.size,
    format: format(t),
  };
}

function format(t: TargetDisk): ImageFormat {
  const d = t.source;
  if (!isImageFormat(d.format)) {
    throw new ConversionError(
      `${d.inArchive ? `${d.inArchive.archive} (${d.inArchive.member})` : d.path}: the source does not say the disk's format (${d.format})`,
      { hint: 'give the format with -i disk --disk-format' },
    );
  }
  return d.format;
}

/** The source image of a target disk, with its declared format (never probed). */
export function sourceImage(t: TargetDisk): ImageRef {
  const m = archivedImage(t);
  if (m) return { path: m.archive, format: m.format };
  return { path: t.source.path, format: format(t) };
}

export interface PrepareOptions {
  storage: ConvertStorage;
  /** Where copy mode keeps its overlays (default: the output directory). */
  snapshotDir?: string | undefined;
  cleanup: CleanupStack;
}

/** Prepares one disk for conversion. */
export async function prepareDisk(
  qemu: QemuImg,
  t: TargetDisk,
  opts: PrepareOptions,
): Promise<WorkDisk> {
  const member = archivedImage(t);
  if (member || t.source.inArchive) {
    return prepareArchived(qemu, t, member, opts);
  }
  const source = sourceImage(t);
  // Every image of the chain is checked (format, backing files) before anything opens it.
  await qemu.infoChain(source);
  if (opts.storage === 'in-place') {
    return { target: t, source, work: source, finish: async () => source };
  }
  const output: ImageRef = { path: t.output, format: t.outputFormat };
  const overlayDir =
    opts.storage === 'copy' ? (opts.snapshotDir ?? path.dirname(t.output)) : path.dirname(t.output);
  const overlay: ImageRef = {
    path: tempSibling(path.join(overlayDir, path.basename(t.output))),
    format: 'qcow2',
  };
  const overlayHandle: CleanupHandle = opts.cleanup.defer(`remove overlay ${overlay.path}`, () =>
    qemu.node.remove(overlay.path),
  );
  await qemu.allowing(path.dirname(source.path)).create(overlay, { backing: source });
  if (opts.storage === 'snapshot') {
    return {
      target: t,
      source,
      work: overlay,
      finish: async () => {
        await qemu.node.rename(overlay.path, output.path, { noReplace: true });
        overlayHandle.dismiss();
        return output;
      },
    };
  }
  return {
    target: t,
    source,
    work: overlay,
    finish: async (onProgress) => {
      const tmp: ImageRef = { path: tempSibling(output.path), format: output.format };
      const tmpHandle = opts.cleanup.defer(`remove partial output ${tmp.path}`, () =>
        qemu.node.remove(tmp.path),
      );
      const need = await qemu.allowing(path.dirname(source.path)).measure(overlay, output.format);
      const free = await qemu.freeBytes(path.dirname(output.path));
      if (need.requiredBytes > free) {
        throw new ConversionError(
          `${path.dirname(output.path)}: not enough free space for ${path.basename(output.path)}: ${need.requiredBytes} bytes required (qemu-img measure), ${free} bytes available`,
          { hint: 'free space in the output directory or choose another one (-o)' },
        );
      }
      await qemu
        .allowing(path.dirname(source.path))
        .convert(overlay, tmp, onProgress ? { onProgress } : {});
      await qemu.node.rename(tmp.path, output.path, { noReplace: true });
      tmpHandle.dismiss();
      await overlayHandle.runNow();
      return output;
    },
  };
}

/**
 * A disk that came in an archive (an OVA): there is no source file of its own to back an
 * overlay or to convert in place, so copy mode copies it out of the archive (qemu-img reads
 * the member's byte range; nothing is extracted) straight into the output's temporary name,
 * the appliance converts that copy, and finish moves it into place.
 */
async function prepareArchived(
  qemu: QemuImg,
  t: TargetDisk,
  member: ArchivedImage | undefined,
  opts: PrepareOptions,
): Promise<WorkDisk> {
  const a = t.source.inArchive;
  const label = a ? `${a.archive} (${a.member})` : t.source.path;
  if (opts.storage !== 'copy') {
    throw new ConversionError(
      `${label}: --storage ${opts.storage} needs the disk as a file of its own, and this one is inside an archive`,
      { hint: 'use --storage copy (the default), or extract the archive and convert its .ovf' },
    );
  }
  const source: ImageRef = member
    ? { path: member.archive, format: member.format }
    : sourceImage(t);
  const output: ImageRef = { path: t.output, format: t.outputFormat };
  const tmp: ImageRef = { path: tempSibling(output.path), format: output.format };
  const tmpHandle = opts.cleanup.defer(`remove partial output ${tmp.path}`, () =>
    qemu.node.remove(tmp.path),
  );
  if (member) await qemu.convertMember(member, tmp);
  else await qemu.allowing(path.dirname(source.path)).convert(source, tmp);
  return {
    target: t,
    source,
    work: tmp,
    finish: async () => {
      await qemu.node.rename(tmp.path, output.path, { noReplace: true });
      tmpHandle.dismiss();
      return output;
    },
  };
}
