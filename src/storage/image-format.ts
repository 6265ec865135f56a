/**
 * Image formats, and sniffing one from the first bytes of a file (for messages and for the CLI
 * when no format is given). qemu-img itself is never asked to probe.
 */
import * as path from 'node:path';
import { CommandError } from '../errors.js';
import type { Node } from '../node/node.js';
import { FormatMismatchError, StorageError } from './errors.js';

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
  // a descriptor whose comment line was dropped
  if (/^\s*createType\s*=\s*"\w+"/m.test(head.toString('latin1', 0, 512))) return 'vmdk';
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

/**
 * The format a file name's extension claims. `.img` (and anything else) claims none: it is
 * used for every format.
 */
export const EXTENSION_CLAIMS: Readonly<Record<string, ImageFormat>> = {
  qcow2: 'qcow2',
  qcow: 'qcow2',
  vmdk: 'vmdk',
  vdi: 'vdi',
  vhdx: 'vhdx',
  vhd: 'vpc',
  vpc: 'vpc',
  qed: 'qed',
  raw: 'raw',
};

/** What each format's content shows, for messages: its name, and what marks it. */
const SIGNS: Record<ImageFormat, { name: string; mark: string }> = {
  qcow2: { name: 'a qcow2 image', mark: 'QFI\\xfb magic' },
  vmdk: { name: 'a VMDK', mark: 'KDMV magic, no descriptor' },
  vdi: { name: 'a VDI image', mark: 'VDI signature' },
  vhdx: { name: 'a VHDX image', mark: 'vhdxfile magic' },
  vpc: { name: 'a VHD image', mark: 'conectix footer' },
  qed: { name: 'a QED image', mark: 'QED magic' },
  raw: { name: 'raw', mark: 'no magic' },
};

/** The format the extension of `file` claims, if any. */
export function formatOfName(file: string): ImageFormat | undefined {
  return EXTENSION_CLAIMS[path.extname(file).slice(1).toLowerCase()];
}

/**
 * The format of a source image: the one the user `declared`; else the one its content (magic)
 * shows, which must agree with the one its name claims (`disk.vmdk` full of random bytes is
 * not copied as raw).
 * @param option the option that declares the format, named in the message
 * @throws FormatMismatchError with both the name's and the content's format
 */
export async function sourceFormat(
  node: Node,
  file: string,
  declared: ImageFormat | undefined,
  option = '--source-format',
): Promise<ImageFormat> {
  if (declared) return declared;
  const seen = await sniffFormat(node, file);
  const claimed = formatOfName(file);
  if (claimed === undefined || claimed === seen) return seen;
  if (claimed === 'vpc' && seen === 'raw' && (await fixedVhd(node, file))) return 'vpc';
  const says = `the name says ${claimed}`;
  if (seen === 'raw') {
    throw new FormatMismatchError(
      file,
      `${says} but the content is not ${SIGNS[claimed].name} (no ${SIGNS[claimed].mark}); ` +
        `give ${option} raw if it really is raw`,
      { hint: `a ${path.extname(file)} file that is not ${claimed} is damaged or misnamed` },
    );
  }
  const mark = seen === 'vmdk' ? 'KDMV magic or a descriptor' : SIGNS[seen].mark;
  throw new FormatMismatchError(
    file,
    `${says} but the content is ${SIGNS[seen].name} (${mark}); ` +
      `give ${option} ${seen} if it really is ${seen}` +
      (claimed === 'raw' ? `, or ${option} raw if it is a raw disk starting with those bytes` : ''),
    { hint: 'v2v-load never guesses a format when the name and the content disagree' },
  );
}

/** True when the last 512 bytes of `file` are a VHD footer (a fixed VHD has no header). */
async function fixedVhd(node: Node, file: string): Promise<boolean> {
  const r = await node.run(['tail', '-c', '512', '--', file], {
    reject: false,
    timeoutMs: 60_000,
    maxBuffer: 512,
  });
  return r.exitCode === 0 && r.stdoutBytes.toString('latin1', 0, 8) === 'conectix';
}
