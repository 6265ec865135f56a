/**
 * `v2v-load image info|copy|cow|find`: the storage layer on a node (local or `--host`), one
 * file per subcommand. Formats are never guessed by qemu-img: given with `--source-format`, or
 * read from the file's magic (and then the backing-file policy applies: only the image's own
 * directory and the `--allow-dir` directories may hold backing files). `--format` is always
 * the format written (`image copy`).
 */
import { defineCommand } from '../../command.js';
import type { CliContext } from '../../context.js';
import { copyCommand } from './copy.js';
import { cowCommand } from './cow.js';
import { findCommand } from './find.js';
import { infoCommand } from './info.js';

export { progressBar, progressReporter } from './progress.js';

/** `v2v-load image ...` */
export function imageCommand(ctx: CliContext) {
  return defineCommand({
    command: 'image <command>',
    describe: 'disk images on a node: info, copy, cow, find',
    builder: (y) =>
      y
        .command(infoCommand(ctx))
        .command(copyCommand(ctx))
        .command(cowCommand(ctx))
        .command(findCommand(ctx))
        .demandCommand(1, 'give an image command: info, copy, cow or find')
        .example('$0 image info /var/lib/libvirt/images/web.qcow2 --json', 'format, sizes, chain')
        .example('$0 image copy /src/disk.vmdk /images/disk.qcow2', 'convert with a progress bar')
        .example('$0 image cow /images/base-v3.qcow2 /vms/pc1_12-v3.qcow2', 'a VM overlay')
        .example(
          '$0 image find base-v3 --datastore /images --repository /repo --host ssh://root@node1',
          'where an image is, its files and size',
        ),
    handler: () => {},
  });
}
