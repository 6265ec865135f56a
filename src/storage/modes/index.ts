/** The storage modes by name. */

import { StorageError } from '../errors.js';
import { CopyMode } from './copy.js';
import { CowMode } from './cow.js';
import { InPlaceMode } from './in-place.js';
import { SnapshotMode } from './snapshot.js';
import type { StorageMode, StorageModeName } from './storage-mode.js';

export type { PreparedDisk, StorageMode, StorageModeName, StorageRequest } from './storage-mode.js';
export { runMode, STORAGE_MODE_NAMES } from './storage-mode.js';
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

/**
 * The mode named `name` among `modes` (those registered in the container): one pure choice.
 * The last one registered wins, so registering another mode of a name replaces it.
 * @throws StorageError when no mode of that name is registered
 */
export function chooseStorageMode(
  modes: readonly StorageMode[],
  name: StorageModeName,
): StorageMode {
  const mode = modes.findLast((m) => m.name === name);
  if (!mode) {
    throw new StorageError(name, 'no such storage mode is registered', {
      hint: `registered: ${modes.map((m) => m.name).join(', ') || 'none'}`,
    });
  }
  return mode;
}
