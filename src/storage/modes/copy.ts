/**
 * copy: the source converted into the target format under a temporary name in the target's
 * directory (free space checked against `qemu-img measure` first), renamed onto the target at
 * the end. The source is only read.
 */
import type { ConvertOptions, QemuImg } from '../qemu-img.js';
import { checkSpace, freshTemp, renameIntoPlace, tempImage } from './common.js';
import type { PreparedDisk, StorageMode, StorageRequest } from './storage-mode.js';

export class CopyMode implements StorageMode {
  readonly name = 'copy' as const;
  constructor(private readonly convert: Omit<ConvertOptions, 'onProgress'> = {}) {}

  async prepare(qemu: QemuImg, req: StorageRequest): Promise<PreparedDisk> {
    const tmp = await freshTemp(qemu, req.target);
    await checkSpace(qemu, req.source, req.target);
    const work = { path: tmp, format: req.target.format };
    const partial = tempImage(qemu, tmp, req.cleanup);
    try {
      await qemu.convert(req.source, work, {
        ...this.convert,
        ...(req.onProgress ? { onProgress: req.onProgress } : {}),
      });
    } catch (e) {
      await partial.remove();
      throw e;
    }
    return {
      work,
      finish: async () => {
        await renameIntoPlace(qemu, tmp, req.target.path);
        partial.keep();
        return req.target;
      },
      abort: () => partial.remove(),
    };
  }
}
