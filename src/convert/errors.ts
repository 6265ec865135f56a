/** Errors of the conversion: the guest cannot be converted as asked, or a step failed. */
import { V2vError } from '../errors.js';

export class ConversionError extends V2vError {
  override readonly code: string = 'CONVERSION';
}
