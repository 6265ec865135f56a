/** `v2v-load image find NAME`: an image by exact name, in the datastore, then the repository. */
import { doesImageExist, imageSize } from '../../../storage/repository.js';
import { defineCommand } from '../../command.js';
import type { CliContext } from '../../context.js';
import { ABSOLUTE, absolute, allowedDirs, imageRun, withImageOptions } from './common.js';

export function findCommand(ctx: CliContext) {
  return defineCommand({
    command: 'find <name>',
    describe: 'find an image by exact name: the datastore first, then the repository',
    builder: (y) =>
      withImageOptions(y)
        .positional('name', {
          type: 'string',
          demandOption: true,
          describe: 'the image name, e.g. vmwarewinxp-base234-v23',
        })
        .option('datastore', {
          type: 'string',
          demandOption: true,
          describe: `the datastore directory (${ABSOLUTE})`,
        })
        .option('repository', {
          type: 'string',
          describe: `the image repository directory (${ABSOLUTE})`,
        }),
    handler: async (args) => {
      const datastore = absolute(args.datastore, '--datastore');
      const repository = args.repository ? absolute(args.repository, '--repository') : undefined;
      const dirs = [datastore, ...(repository ? [repository] : []), ...allowedDirs(args)];
      const { node, qemu } = await imageRun(ctx, args, dirs);
      const found = await doesImageExist(node, { datastore, repository, image: args.name });
      if (!found) {
        ctx.out(
          args.json
            ? `${JSON.stringify({ name: args.name, found: false })}\n`
            : `${args.name}: not found\n`,
        );
        ctx.setExit(1);
        return;
      }
      const size = await imageSize(qemu, found.entry);
      if (args.json) {
        ctx.out(`${JSON.stringify({ name: args.name, found: true, ...found, size })}\n`);
        return;
      }
      ctx.out(
        [
          `${args.name}: in the ${found.where}`,
          `entry:    ${found.entry.path} (${found.entry.format})`,
          `files:    ${found.files.join(', ')}`,
          `size:     ${size.bytes} bytes (${size.mib} MiB), virtual ${size.virtualBytes} bytes`,
          '',
        ].join('\n'),
      );
    },
  });
}
