import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import type { Logger } from '../../log/logger.js';
import { READER_KINDS, type ReaderKind } from '../../metadata/model.js';
import { formatGuest, guestToJson } from '../../metadata/printer.js';
import type { ReaderOptions } from '../../metadata/reader.js';
import { guessKind, readerFor } from '../../metadata/registry.js';
import type { Node } from '../../node/node.js';
import { parseSize } from '../../util/size.js';
import type { CliContext, GlobalArgs } from '../context.js';
import { type NodeArgs, nodeSpecFrom, withNodeOptions } from '../node-options.js';

interface InspectArgs extends GlobalArgs, NodeArgs {
  source: string[];
  input?: ReaderKind | undefined;
  connect: string;
  name?: string | undefined;
  memory?: string | undefined;
  vcpus?: number | undefined;
  network?: string[] | undefined;
  'disk-format'?: string | undefined;
}

export function inspectCommand(ctx: CliContext): CommandModule<GlobalArgs, InspectArgs> {
  return {
    command: 'inspect <source..>',
    describe: "read a source guest's metadata (vmx, ova, ovf, libvirt XML, libvirt domain, disks)",
    builder: (y) =>
      withNodeOptions(y)
        .positional('source', {
          type: 'string',
          array: true,
          describe: 'a .vmx, .ova, .ovf or domain .xml file, a libvirt domain name, or disk images',
        })
        .option('input', {
          alias: 'i',
          choices: READER_KINDS,
          describe: 'the input kind (guessed from the source when not given)',
        })
        .option('connect', {
          alias: 'c',
          type: 'string',
          default: 'qemu:///system',
          describe: '-i libvirt: the libvirt URI on the node',
        })
        .option('name', { type: 'string', describe: '-i disk: guest name' })
        .option('memory', { type: 'string', describe: '-i disk: memory, e.g. 2G (default 1G)' })
        .option('vcpus', { type: 'number', describe: '-i disk: vCPUs (default 1)' })
        .option('network', {
          type: 'string',
          array: true,
          describe: '-i disk: a network name, one NIC each (repeatable)',
        })
        .option('disk-format', {
          type: 'string',
          describe: '-i disk: format of the images when the extension does not say',
        })
        .example('$0 inspect guest.vmx', 'read a VMware guest')
        .example('$0 inspect appliance.ova --json', 'the same model as JSON')
        .example(
          '$0 inspect -i libvirt web01 --host ssh://root@xenhost',
          'a domain on a remote host',
        )
        .example('$0 inspect disk1.qcow2 --name web --memory 2G --vcpus 2', 'bare disks') as never,
    handler: async (args) => {
      const sources = args.source;
      const kind = args.input ?? guessKind(sources);
      const reader = readerFor(kind);
      const options: ReaderOptions = {
        connect: args.connect,
        name: args.name,
        memoryBytes: args.memory === undefined ? undefined : parseSize(args.memory, '--memory'),
        vcpus: args.vcpus,
        networks: args.network,
        diskFormat: args['disk-format'],
      };
      // First pass: every option is checked before anything is read.
      reader.check(sources, options);
      const run = await createRunContainer(ctx.root, nodeSpecFrom(args));
      const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-inspect-'));
      try {
        const guest = await reader.read(sources, options, {
          node: run.resolve<Node>(TOKENS.Node),
          log: run.resolve<Logger>(TOKENS.Logger),
          tmpDir,
        });
        ctx.out(args.json ? guestToJson(guest) : formatGuest(guest));
      } finally {
        await fs.rm(tmpDir, { recursive: true, force: true });
      }
    },
  };
}
