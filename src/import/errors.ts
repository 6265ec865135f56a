import { V2vError } from '../errors.js';

/** An import could not be done: the target, the pool, the name, the domain, the boot. */
export class ImportError extends V2vError {
  override readonly code: string = 'IMPORT_FAILED';
}

/**
 * Another import of the same name into the same pool holds its record (a live process): the
 * lock is busy, trying again later may work (a batch queue retries it with a pause).
 */
export class ImportBusyError extends ImportError {
  override readonly code = 'IMPORT_BUSY';
}
