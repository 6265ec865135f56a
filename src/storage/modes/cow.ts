/**
 * cow: a per-VM qcow2 overlay over a master (the provisioning case): created with `-b` and
 * `-F` under a temporary name, renamed onto the target. The master is only read.
 */
import * as path from 'node:path';
import { StorageError } from '../errors.js';
import type { QemuImg } from '../qemu-img.js';
import { freshTemp, renameIntoPlace, tempImage } from './common.js';
import type { PreparedDisk, StorageMode, StorageRequest } from './storage-mode.js';

export class CowMode implements StorageMode {
  readonly name = 'cow' as const;

  async prepare(given: QemuImg, req: StorageRequest): Promise<PreparedDisk> {
    // The source was named by the caller: the overlay may point at its directory.
    const qemu = given.allowing(path.dirname(req.source.path));
    if (req.target.format !== 'qcow2') {
      throw new StorageError(req.target.path, 'a copy-on-write image must be qcow2');
    }
    const tmp = await freshTemp(qemu, req.target);
    const work = { path: tmp, format: 'qcow2' as const };
    const partial = tempImage(qemu, tmp, req.cleanup);
    try {
      await qemu.create(work, { backing: req.source });
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
