/**
 * `v2v-load image copy SRC DST`: the copy storage mode. `--format` is the output's format,
 * `--source-format` the source's (as in every image command).
 */
import { TOKENS } from '../../../di/tokens.js';
import { IMAGE_FORMATS, type ImageFormat } from '../../../storage/image-format.js';
import { chooseStorageMode, runMode, type StorageMode } from '../../../storage/modes/index.js';
import { defineCommand } from '../../command.js';
import type { CliContext } from '../../context.js';
import { ABSOLUTE, absolute, allowedDirs, imageRun, refOf, withImageOptions } from './common.js';
import { progressReporter } from './progress.js';

/** The formats `image copy` writes. */
export const OUTPUT_FORMATS = ['qcow2', 'raw'] as const satisfies readonly ImageFormat[];

export function copyCommand(ctx: CliContext) {
  return defineCommand({
    command: 'copy <src> <dst>',
    describe: 'convert an image to a new file (temporary name, renamed when complete)',
    builder: (y) =>
      withImageOptions(y)
        .positional('src', {
          type: 'string',
          demandOption: true,
          describe: `the source image (${ABSOLUTE})`,
        })
        .positional('dst', {
          type: 'string',
          demandOption: true,
          describe: `the new image, must not exist (${ABSOLUTE})`,
        })
        .option('format', {
          alias: 'O',
          choices: OUTPUT_FORMATS,
          default: 'qcow2' as (typeof OUTPUT_FORMATS)[number],
          describe: 'the output format',
        })
        .option('source-format', {
          alias: 'f',
          choices: IMAGE_FORMATS,
          describe: 'the source format (default: from its first bytes)',
        }),
    handler: async (args) => {
      const src = absolute(args.src, 'SRC');
      const dst = absolute(args.dst, 'DST');
      const dirs = allowedDirs(args);
      const { container, node, qemu } = await imageRun(ctx, args, dirs);
      const mode = chooseStorageMode(container.resolveAll<StorageMode>(TOKENS.StorageMode), 'copy');
      const progress = progressReporter(ctx, args.json);
      const out = await runMode(mode, qemu, {
        source: await refOf(node, src, args['source-format']),
        target: { path: dst, format: args.format },
        onProgress: progress.onProgress,
        cleanup: ctx.scope.cleanup,
      }).finally(progress.end);
      ctx.out(
        args.json
          ? `${JSON.stringify({ event: 'done', path: out.path, format: out.format })}\n`
          : `${out.path} (${out.format})\n`,
      );
    },
  });
}
