/** Helpers the storage modes share. */

import * as path from 'node:path';
import { tempSibling } from '../../node/temp-name.js';
import type { CleanupStack } from '../../run/cleanup.js';
import { NoSpaceError, StorageError, TargetAppearedError } from '../errors.js';
import type { ImageRef } from '../image-format.js';
import type { QemuImg } from '../qemu-img.js';

/** Refuses a target that exists already; returns a temporary sibling of it. */
export async function freshTemp(qemu: QemuImg, target: ImageRef): Promise<string> {
  if (!path.isAbsolute(target.path)) {
    throw new StorageError(target.path, 'target must be an absolute path');
  }
  if (await qemu.node.stat(target.path)) {
    throw new StorageError(target.path, 'target exists already; not overwritten', {
      hint: 'remove it or choose another name',
    });
  }
  return tempSibling(target.path);
}

/**
 * Fails early when the directory of `target` has less free space than `qemu-img measure`
 * says converting `source` to the target format needs.
 * @throws NoSpaceError with both numbers
 */
export async function checkSpace(qemu: QemuImg, source: ImageRef, target: ImageRef): Promise<void> {
  const need = await qemu.measure(source, target.format);
  const dir = path.dirname(target.path);
  const free = await qemu.freeBytes(dir);
  if (need.requiredBytes > free) throw new NoSpaceError(dir, need.requiredBytes, free);
}

/**
 * Moves a finished output onto its final name, never over a file: the target was absent when
 * the run began ({@link freshTemp}), and one that appeared since was made by someone else.
 * @throws TargetAppearedError naming the target (the temporary file is left to the caller)
 */
export async function renameIntoPlace(qemu: QemuImg, tmp: string, target: string): Promise<void> {
  try {
    await qemu.node.rename(tmp, target, { noReplace: true });
  } catch (e) {
    if (!(await qemu.node.stat(target).catch(() => undefined))) throw e;
    throw new TargetAppearedError(
      target,
      'appeared during the run (another process made it); not overwritten',
      { cause: e, hint: 'find out what else writes there, then remove it or choose another name' },
    );
  }
}

/** Removes a file, ignoring every error (cleanup path). */
export async function removeQuietly(qemu: QemuImg, file: string): Promise<void> {
  await qemu.node.remove(file).catch(() => {});
}

/** A temporary image of a mode: removed now, kept (handed over), or removed by the stack. */
export interface TempImage {
  /** Removes it now (never throws). */
  remove(): Promise<void>;
  /** It became the output (renamed into place): nothing to remove any more. */
  keep(): void;
}

/**
 * Registers `file` (not made yet, about to be) with the run's cleanup stack when there is one:
 * if the run ends before {@link TempImage.keep}, the stack removes it.
 */
export function tempImage(qemu: QemuImg, file: string, cleanup?: CleanupStack): TempImage {
  const step = cleanup?.defer(`remove ${file} on ${qemu.node.name}`, () => qemu.node.remove(file));
  return {
    remove: async () => {
      if (step) await step.runNow();
      else await removeQuietly(qemu, file);
    },
    keep: () => step?.dismiss(),
  };
}
