/**
 * How a disk reaches the target: one interface, one file per mode. `prepare` gives the image
 * the conversion works on; `finish` turns it into the output; `abort` removes what `prepare`
 * made. Each mode cleans up after itself when a step fails.
 */
import type { CleanupStack } from '../../run/cleanup.js';
import type { ImageRef } from '../image-format.js';
import type { ProgressEvent, QemuImg } from '../qemu-img.js';

/** Every storage mode, by name. */
export const STORAGE_MODE_NAMES = ['copy', 'snapshot', 'in-place', 'cow'] as const;
export type StorageModeName = (typeof STORAGE_MODE_NAMES)[number];

/** What a mode is asked to do. */
export interface StorageRequest {
  /** The source image (for cow: the master). */
  source: ImageRef;
  /** The output image (its path and format). Ignored by in-place. */
  target: ImageRef;
  onProgress?: (e: ProgressEvent) => void;
  /**
   * The run's cleanup stack: each temporary image is registered with it where it is made, so
   * an interrupted run (or one that never calls finish or abort) leaves nothing behind.
   */
  cleanup?: CleanupStack | undefined;
}

/** The image the conversion works on, between prepare and finish. */
export interface PreparedDisk {
  /** The image to open read-write. */
  work: ImageRef;
  /** Makes the output final; returns it. */
  finish(): Promise<ImageRef>;
  /** Removes everything prepare made (never the source). */
  abort(): Promise<void>;
}

/** A storage mode. */
export interface StorageMode {
  readonly name: StorageModeName;
  /** Makes the work image. On failure nothing is left behind. */
  prepare(qemu: QemuImg, req: StorageRequest): Promise<PreparedDisk>;
}

/** prepare, then finish (the case without a conversion step in between); abort on failure. */
export async function runMode(
  mode: StorageMode,
  qemu: QemuImg,
  req: StorageRequest,
  between?: (work: ImageRef) => Promise<void>,
): Promise<ImageRef> {
  const disk = await mode.prepare(qemu, req);
  try {
    if (between) await between(disk.work);
    return await disk.finish();
  } catch (e) {
    await disk.abort();
    throw e;
  }
}
