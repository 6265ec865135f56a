/** Helpers the storage modes share. */

import * as path from 'node:path';
import { tempSibling } from '../../node/temp-name.js';
import { NoSpaceError, StorageError } from '../errors.js';
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

/** Removes a file, ignoring every error (cleanup path). */
export async function removeQuietly(qemu: QemuImg, file: string): Promise<void> {
  await qemu.node.remove(file).catch(() => {});
}
