/**
 * What every `image` subcommand shares: the node and backing-directory options, the check that
 * image paths are absolute (before any connection is made), and the run container.
 */
import * as path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import type { Argv } from 'yargs';
import { createRunContainer } from '../../../di/composition-root.js';
import { TOKENS } from '../../../di/tokens.js';
import { UsageError } from '../../../errors.js';
import type { Node } from '../../../node/node.js';
import { type ImageFormat, type ImageRef, sourceFormat } from '../../../storage/image-format.js';
import type { QemuImg } from '../../../storage/qemu-img.js';
import type { CliContext } from '../../context.js';
import { type NodeArgs, nodeSpecFrom, withNodeOptions } from '../../node-options.js';

export const MiB = 1024 * 1024;

/** The options of every image subcommand. */
export interface ImageArgs extends NodeArgs {
  'allow-dir'?: string[] | undefined;
}

/** Said in `--help` of every image path argument. */
export const ABSOLUTE = 'absolute path on the node';

/** The node options and `--allow-dir`. */
export function withImageOptions<T>(y: Argv<T>) {
  return withNodeOptions(y).option('allow-dir', {
    type: 'string',
    array: true,
    describe: `a directory backing files may be in (besides the image's own); repeatable; ${ABSOLUTE}`,
  });
}

/** `p` when it is absolute; otherwise a usage error naming `option`. */
export function absolute(p: string, option: string): string {
  if (!path.isAbsolute(p)) {
    throw new UsageError(`${option} '${p}': give an absolute path on the node`);
  }
  return p;
}

/** The `--allow-dir` directories, each checked to be absolute. */
export function allowedDirs(args: ImageArgs): string[] {
  return (args['allow-dir'] ?? []).map((d) => absolute(d, '--allow-dir'));
}

/** The run: its node and its qemu-img layer (backing files allowed in `dirs` too). */
export interface ImageRun {
  container: DependencyContainer;
  node: Node;
  qemu: QemuImg;
}

/**
 * Connects to the node (call it only once every argument has been checked: a usage error
 * comes before any connection).
 */
export async function imageRun(
  ctx: CliContext,
  args: NodeArgs,
  dirs: readonly string[],
): Promise<ImageRun> {
  const container = await createRunContainer(ctx.root, nodeSpecFrom(args), {
    allowedBackingDirs: dirs,
  });
  return {
    container,
    node: container.resolve<Node>(TOKENS.Node),
    qemu: container.resolve<QemuImg>(TOKENS.QemuImg),
  };
}

/**
 * The image with its format: as given (`--source-format`), or read from its first bytes, which
 * must agree with what its name's extension says (else a FormatMismatchError naming both).
 */
export async function refOf(
  node: Node,
  file: string,
  format: ImageFormat | undefined,
): Promise<ImageRef> {
  return { path: file, format: await sourceFormat(node, file, format, '--source-format') };
}
