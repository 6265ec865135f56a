import { V2vError } from '../errors.js';

/** An import could not be done: the target, the pool, the name, the domain, the boot. */
export class ImportError extends V2vError {
  override readonly code: string = 'IMPORT_FAILED';
}
