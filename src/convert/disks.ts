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
import type { ImageRef } from '../storage/image-format.js';
import { isImageFormat } from '../storage/image-format.js';
import type { ProgressEvent, QemuImg } from '../storage/qemu-img.js';
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

/** The source image of a target disk, with its declared format (never probed). */
export function sourceImage(t: TargetDisk): ImageRef {
  const d = t.source;
  if (d.inArchive) {
    throw new ConversionError(
      `${d.inArchive.archive}: disk ${d.inArchive.member} is inside the archive; converting from an OVA needs it extracted`,
      { hint: 'extract the OVA (tar -xf) and convert its .ovf' },
    );
  }
  if (!isImageFormat(d.format)) {
    throw new ConversionError(
      `${d.path}: the source does not say the disk's format (${d.format})`,
      {
        hint: 'give the format with -i disk --disk-format',
      },
    );
  }
  return { path: d.path, format: d.format };
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
