/**
 * Image formats, and sniffing one from the first bytes of a file (for messages and for the CLI
 * when no format is given). qemu-img itself is never asked to probe.
 */
import { CommandError } from '../errors.js';
import type { Node } from '../node/node.js';
import { StorageError } from './errors.js';

/** The formats this layer passes to qemu-img. */
export const IMAGE_FORMATS = ['raw', 'qcow2', 'vmdk', 'vdi', 'vhdx', 'vpc', 'qed'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** An image and its (trusted) format. */
export interface ImageRef {
  path: string;
  format: ImageFormat;
}

/** True when `s` is one of {@link IMAGE_FORMATS}. */
export function isImageFormat(s: string): s is ImageFormat {
  return (IMAGE_FORMATS as readonly string[]).includes(s);
}

/**
 * The format the first bytes of an image suggest: `raw` when no known magic is there.
 * Only a hint: a raw disk can start with any bytes, so callers that know the format pass it.
 */
export function formatFromMagic(head: Buffer): ImageFormat {
  const m = head.toString('latin1', 0, 8);
  if (m.startsWith('QFI\xfb')) return 'qcow2';
  if (m.startsWith('KDMV')) return 'vmdk';
  if (m.startsWith('QED\0')) return 'qed';
  if (m.startsWith('conectix')) return 'vpc';
  if (m.startsWith('vhdxfile')) return 'vhdx';
  if (head.toString('latin1', 64, 68) === '\x7f\x10\xda\xbe') return 'vdi';
  if (/^\s*#\s*Disk DescriptorFile/i.test(head.toString('latin1', 0, 64))) return 'vmdk';
  return 'raw';
}

/**
 * Reads the first 512 bytes of `file` on the node and returns {@link formatFromMagic}.
 * @throws StorageError naming the file when it cannot be read
 */
export async function sniffFormat(node: Node, file: string): Promise<ImageFormat> {
  try {
    const r = await node.run(['dd', `if=${file}`, 'bs=512', 'count=1', 'status=none'], {
      timeoutMs: 60_000,
      maxBuffer: 512,
    });
    return formatFromMagic(r.stdoutBytes);
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    throw new StorageError(file, `cannot read: ${e.stderr.trim().split('\n')[0] ?? ''}`, {
      cause: e,
    });
  }
}
