/**
 * Errors of the storage layer: a bad image, a refused backing file, no space, a lock.
 */
import { V2vError, type V2vErrorOptions } from '../errors.js';

/** An image is broken, hostile, of the wrong format, or an image operation failed. */
export class StorageError extends V2vError {
  override readonly code: string = 'STORAGE';
  constructor(
    /** The image (or directory) at fault. */
    readonly file: string,
    problem: string,
    options: V2vErrorOptions = {},
  ) {
    super(`${file}: ${problem}`, options);
  }
}

/** A backing file outside the allowed directories (or one whose format is not recorded). */
export class BackingFileRefusedError extends StorageError {
  override readonly code = 'BACKING_FILE_REFUSED';
}

/** A file whose name says one format and whose content says another. */
export class FormatMismatchError extends StorageError {
  override readonly code = 'FORMAT_MISMATCH';
}

/** An output's final name was taken by someone else while the run made it. */
export class TargetAppearedError extends StorageError {
  override readonly code = 'TARGET_APPEARED';
}

/** Not enough free space for an operation; the message carries both numbers. */
export class NoSpaceError extends StorageError {
  override readonly code = 'NO_SPACE';
  constructor(
    dir: string,
    readonly requiredBytes: number,
    readonly availableBytes: number,
  ) {
    super(
      dir,
      `not enough free space: ${requiredBytes} bytes required (qemu-img measure), ` +
        `${availableBytes} bytes available`,
      { hint: 'free space in the target directory or choose another one' },
    );
  }
}
