/**
 * The VCL datastore and image repository rules, with VCL's bugs fixed:
 * - naming: master `<datastore>/<image>.<ext>`, COW `<vmpath>/<computer>_<imageid>-v<rev>.<ext>`,
 *   repository `<repo>/<image>/...` or `<repo>/<image>.*`;
 * - an image's files are found by exact name (`x-v1` never matches `x-v10.qcow2`), `.vmx`,
 *   `.txt` and `.xml` files are ignored, and a split VMDK is entered through its descriptor,
 *   whose extents say which files belong to it;
 * - sizes come from `qemu-img info --output=json`, summed over the backing chain (a VMDK's
 *   actual size already covers its extents).
 */
import * as path from 'node:path';
import type { Node } from '../node/node.js';
import { StorageError } from './errors.js';
import type { ImageFormat, ImageRef } from './image-format.js';
import type { QemuImg } from './qemu-img.js';
import { readVmdk } from './vmdk.js';

/** Extensions never part of an image (VCL's rule). */
export const EXCLUDED_EXTENSIONS = ['vmx', 'txt', 'xml'] as const;

/** The image format each extension means. */
export const EXTENSION_FORMATS: Record<string, ImageFormat> = {
  qcow2: 'qcow2',
  qcow: 'qcow2',
  img: 'raw',
  raw: 'raw',
  vmdk: 'vmdk',
  vdi: 'vdi',
  vhdx: 'vhdx',
  vhd: 'vpc',
  qed: 'qed',
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
const EXT = /^[A-Za-z0-9]+$/;

function checkName(value: string, what: string): void {
  if (!NAME.test(value) || value.includes('..')) {
    throw new StorageError(value, `${what} "${value}" is not a safe file name`, {
      hint: 'letters, digits, _ . + - only; no slash, no leading dot',
    });
  }
}

function checkDir(dir: string): void {
  if (!path.isAbsolute(dir)) throw new StorageError(dir, 'directory must be an absolute path');
}

/** `<datastore>/<image>.<ext>`: the master image of an image revision on a node. */
export function masterPath(datastore: string, image: string, ext = 'qcow2'): string {
  checkDir(datastore);
  checkName(image, 'image name');
  if (!EXT.test(ext)) throw new StorageError(ext, `extension "${ext}" is not allowed`);
  return path.join(datastore, `${image}.${ext}`);
}

/** `<vmpath>/<computer>_<imageid>-v<rev>.<ext>`: a VM's copy-on-write image. */
export function cowPath(
  vmpath: string,
  computer: string,
  imageId: number,
  revision: number,
  ext = 'qcow2',
): string {
  checkDir(vmpath);
  checkName(computer, 'computer name');
  for (const [n, v] of [
    ['image id', imageId],
    ['revision', revision],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new StorageError(String(v), `${n} ${v} is not a number`);
  }
  if (!EXT.test(ext)) throw new StorageError(ext, `extension "${ext}" is not allowed`);
  return path.join(vmpath, `${computer}_${imageId}-v${revision}.${ext}`);
}

/** The files of one image. */
export interface ImageFiles {
  /** The file to open: the image, or a VMDK's descriptor. */
  entry: ImageRef;
  /** Every file of the image (entry first). */
  files: string[];
  where: 'datastore' | 'repository';
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Finds the image named `image` in `dir` by exact name: `<image>.<ext>` (an image extension,
 * never .vmx/.txt/.xml), plus for a VMDK the extents its descriptor lists.
 * @returns undefined when there is none
 * @throws StorageError when two images share the name, or a VMDK is broken
 */
export async function findImageIn(
  node: Node,
  dir: string,
  image: string,
  where: ImageFiles['where'],
): Promise<ImageFiles | undefined> {
  checkDir(dir);
  checkName(image, 'image name');
  const st = await node.stat(dir);
  if (st?.type !== 'directory') return undefined;
  const entryRe = new RegExp(`^${escapeRe(image)}\\.([A-Za-z0-9]+)$`);
  const entries = (await node.list(dir)).filter((e) => e.type === 'file');
  const found: { name: string; format: ImageFormat }[] = [];
  for (const e of entries) {
    const m = entryRe.exec(e.name);
    const ext = m?.[1]?.toLowerCase();
    if (!ext || (EXCLUDED_EXTENSIONS as readonly string[]).includes(ext)) continue;
    const format = EXTENSION_FORMATS[ext];
    if (format) found.push({ name: e.name, format });
  }
  if (found.length === 0) return undefined;
  if (found.length > 1) {
    throw new StorageError(
      path.join(dir, image),
      `several images have this name: ${found.map((f) => f.name).join(', ')}`,
      { hint: 'keep one file per image name' },
    );
  }
  const hit = found[0] as { name: string; format: ImageFormat };
  const entry: ImageRef = { path: path.join(dir, hit.name), format: hit.format };
  if (hit.format === 'vmdk') {
    const layout = await readVmdk(node, entry.path);
    return { entry, files: layout.files, where };
  }
  return { entry, files: [entry.path], where };
}

/**
 * The repository copy of an image: `<repo>/<image>/<image>.<ext>` (a directory per image),
 * else `<repo>/<image>.<ext>`.
 */
export async function findInRepository(
  node: Node,
  repository: string,
  image: string,
): Promise<ImageFiles | undefined> {
  checkName(image, 'image name');
  return (
    (await findImageIn(node, path.join(repository, image), image, 'repository')) ??
    (await findImageIn(node, repository, image, 'repository'))
  );
}

/** Where to look for an image. */
export interface ImageLocation {
  datastore: string;
  repository?: string | undefined;
  image: string;
}

/**
 * VCL's does_image_exist: the datastore first, then the repository.
 * @returns the image's files, or undefined when neither has it
 */
export async function doesImageExist(
  node: Node,
  loc: ImageLocation,
): Promise<ImageFiles | undefined> {
  const inStore = await findImageIn(node, loc.datastore, loc.image, 'datastore');
  if (inStore || !loc.repository) return inStore;
  return findInRepository(node, loc.repository, loc.image);
}

/** An image's size. */
export interface ImageSize {
  /** Bytes allocated on disk, summed over the extents and the backing chain. */
  bytes: number;
  /** The same in MiB, rounded up. */
  mib: number;
  /** Virtual size of the top image. */
  virtualBytes: number;
  /** Images of the chain, top first. */
  chain: string[];
}

/** Size of an image from `qemu-img info --output=json`, summed over its backing chain. */
export async function imageSize(qemu: QemuImg, entry: ImageRef): Promise<ImageSize> {
  const chain = await qemu.infoChain(entry);
  const bytes = chain.reduce((s, i) => s + i.actualBytes, 0);
  return {
    bytes,
    mib: Math.ceil(bytes / (1024 * 1024)),
    virtualBytes: chain[0]?.virtualBytes ?? 0,
    chain: chain.map((i) => i.path),
  };
}
