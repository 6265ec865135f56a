/** `v2v-load image cow MASTER DST`: a qcow2 overlay over a master (the cow storage mode). */
import { TOKENS } from '../../../di/tokens.js';
import { IMAGE_FORMATS } from '../../../storage/image-format.js';
import { chooseStorageMode, runMode, type StorageMode } from '../../../storage/modes/index.js';
import { defineCommand } from '../../command.js';
import type { CliContext } from '../../context.js';
import { ABSOLUTE, absolute, allowedDirs, imageRun, refOf, withImageOptions } from './common.js';

export function cowCommand(ctx: CliContext) {
  return defineCommand({
    command: 'cow <master> <dst>',
    describe: 'create a qcow2 copy-on-write image over a master',
    builder: (y) =>
      withImageOptions(y)
        .positional('master', {
          type: 'string',
          demandOption: true,
          describe: `the master image (${ABSOLUTE})`,
        })
        .positional('dst', {
          type: 'string',
          demandOption: true,
          describe: `the new overlay, must not exist (${ABSOLUTE})`,
        })
        .option('source-format', {
          alias: 'f',
          choices: IMAGE_FORMATS,
          describe: 'the master format (default: from its first bytes)',
        }),
    handler: async (args) => {
      const master = absolute(args.master, 'MASTER');
      const dst = absolute(args.dst, 'DST');
      const dirs = allowedDirs(args);
      const { container, node, qemu } = await imageRun(ctx, args, dirs);
      const mode = chooseStorageMode(container.resolveAll<StorageMode>(TOKENS.StorageMode), 'cow');
      const out = await runMode(mode, qemu, {
        source: await refOf(node, master, args['source-format']),
        target: { path: dst, format: 'qcow2' },
        cleanup: ctx.scope.cleanup,
      });
      ctx.out(
        args.json
          ? `${JSON.stringify({ path: out.path, format: out.format, backing: master })}\n`
          : `${out.path} (qcow2 over ${master})\n`,
      );
    },
  });
}
