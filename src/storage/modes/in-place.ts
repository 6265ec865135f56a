/**
 * in-place: the conversion writes the source itself. Only when asked for explicitly
 * (`new InPlaceMode({ explicit: true })`); nothing to undo on failure, nothing to clean up.
 */
import { StorageError } from '../errors.js';
import type { QemuImg } from '../qemu-img.js';
import type { PreparedDisk, StorageMode, StorageRequest } from './storage-mode.js';

export class InPlaceMode implements StorageMode {
  readonly name = 'in-place' as const;
  constructor(private readonly opts: { explicit: boolean } = { explicit: false }) {}

  async prepare(qemu: QemuImg, req: StorageRequest): Promise<PreparedDisk> {
    if (!this.opts.explicit) {
      throw new StorageError(
        req.source.path,
        'in-place mode writes the source: it must be asked for explicitly',
        {
          hint: 'use copy or snapshot mode, or ask for in-place explicitly',
        },
      );
    }
    await qemu.infoChain(req.source);
    return { work: req.source, finish: async () => req.source, abort: async () => {} };
  }
}
