/**
 * snapshot: a qcow2 overlay over the source, which is only ever opened read-only; the
 * conversion writes the overlay. The output is the flattened image (default: the overlay
 * converted into the target format, then the overlay removed) or the overlay itself
 * (`output: 'overlay'`, target format qcow2; it keeps the source as its backing file).
 */
import * as path from 'node:path';
import { StorageError } from '../errors.js';
import type { ImageRef } from '../image-format.js';
import type { QemuImg } from '../qemu-img.js';
import { checkSpace, freshTemp, renameIntoPlace, tempImage } from './common.js';
import type { PreparedDisk, StorageMode, StorageRequest } from './storage-mode.js';

export class SnapshotMode implements StorageMode {
  readonly name = 'snapshot' as const;
  constructor(private readonly output: 'flatten' | 'overlay' = 'flatten') {}

  async prepare(given: QemuImg, req: StorageRequest): Promise<PreparedDisk> {
    // The source was named by the caller: the overlay may point at its directory.
    const qemu = given.allowing(path.dirname(req.source.path));
    if (this.output === 'overlay' && req.target.format !== 'qcow2') {
      throw new StorageError(
        req.target.path,
        'snapshot mode keeps the overlay: target format must be qcow2',
      );
    }
    const overlay = await freshTemp(qemu, req.target);
    const work: ImageRef = { path: overlay, format: 'qcow2' };
    const overlayImage = tempImage(qemu, overlay, req.cleanup);
    try {
      await qemu.create(work, { backing: req.source });
    } catch (e) {
      await overlayImage.remove();
      throw e;
    }
    const finish = async (): Promise<ImageRef> => {
      if (this.output === 'overlay') {
        await renameIntoPlace(qemu, overlay, req.target.path);
        overlayImage.keep();
        return req.target;
      }
      const flat = await freshTemp(qemu, req.target);
      const flatImage = tempImage(qemu, flat, req.cleanup);
      try {
        await checkSpace(qemu, work, req.target);
        await qemu.convert(
          work,
          { path: flat, format: req.target.format },
          {
            ...(req.onProgress ? { onProgress: req.onProgress } : {}),
          },
        );
        await renameIntoPlace(qemu, flat, req.target.path);
        flatImage.keep();
      } catch (e) {
        await flatImage.remove();
        throw e;
      }
      await overlayImage.remove();
      return req.target;
    };
    return { work, finish, abort: () => overlayImage.remove() };
  }
}
