/** `v2v-load image info PATH`: format, sizes and backing chain of an image. */
import { IMAGE_FORMATS } from '../../../storage/image-format.js';
import { defineCommand } from '../../command.js';
import type { CliContext } from '../../context.js';
import {
  ABSOLUTE,
  absolute,
  allowedDirs,
  imageRun,
  MiB,
  refOf,
  withImageOptions,
} from './common.js';

export function infoCommand(ctx: CliContext) {
  return defineCommand({
    command: 'info <path>',
    describe: 'format, virtual and actual size, backing chain of an image',
    builder: (y) =>
      withImageOptions(y)
        .positional('path', {
          type: 'string',
          demandOption: true,
          describe: `the image (${ABSOLUTE})`,
        })
        .option('source-format', {
          alias: 'f',
          choices: IMAGE_FORMATS,
          describe: 'the image format (default: from its first bytes)',
        }),
    handler: async (args) => {
      const file = absolute(args.path, 'PATH');
      const dirs = allowedDirs(args);
      const { node, qemu } = await imageRun(ctx, args, dirs);
      const chain = await qemu.infoChain(await refOf(node, file, args['source-format']));
      const top = chain[0];
      if (!top) return;
      const actual = chain.reduce((s, i) => s + i.actualBytes, 0);
      if (args.json) {
        ctx.out(
          `${JSON.stringify({
            path: top.path,
            format: top.format,
            virtualBytes: top.virtualBytes,
            actualBytes: actual,
            chain: chain.map((c) => ({
              path: c.path,
              format: c.format,
              virtualBytes: c.virtualBytes,
              actualBytes: c.actualBytes,
            })),
          })}\n`,
        );
        return;
      }
      ctx.out(
        [
          `image:    ${top.path}`,
          `format:   ${top.format}`,
          `virtual:  ${top.virtualBytes} bytes (${(top.virtualBytes / MiB).toFixed(1)} MiB)`,
          `actual:   ${actual} bytes (${Math.ceil(actual / MiB)} MiB, whole chain)`,
          `chain:    ${chain.map((c) => `${c.path} (${c.format})`).join(' -> ')}`,
          '',
        ].join('\n'),
      );
    },
  });
}
