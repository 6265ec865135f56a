/** The storage modes by name. */
import { CopyMode } from './copy.js';
import { CowMode } from './cow.js';
import { InPlaceMode } from './in-place.js';
import { SnapshotMode } from './snapshot.js';
import type { StorageMode, StorageModeName } from './storage-mode.js';

export type { PreparedDisk, StorageMode, StorageModeName, StorageRequest } from './storage-mode.js';
export { runMode } from './storage-mode.js';
export { CopyMode, CowMode, InPlaceMode, SnapshotMode };

/** A mode by name; in-place only with `explicitInPlace`. */
export function storageMode(name: StorageModeName, explicitInPlace = false): StorageMode {
  switch (name) {
    case 'copy':
      return new CopyMode();
    case 'snapshot':
      return new SnapshotMode();
    case 'in-place':
      return new InPlaceMode({ explicit: explicitInPlace });
    case 'cow':
      return new CowMode();
  }
}
