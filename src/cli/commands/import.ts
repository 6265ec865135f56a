/**
 * `v2v-load import SOURCE`: convert a VMware (or Xen) guest, place its disks in a pool on a
 * node, define and start it there, and optionally watch it boot (src/import/importer.ts).
 */
import { parseNetworkMapping } from '../../convert/target.js';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { UsageError } from '../../errors.js';
import {
  DEFAULT_POOL,
  IMPORT_STORAGE,
  Importer,
  type ImportRequest,
} from '../../import/importer.js';
import { READER_KINDS, type ReaderKind } from '../../metadata/model.js';
import { guessKind } from '../../metadata/registry.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { nodeSpecFrom, withNodeOptions } from '../node-options.js';
import { formatImportResult, importEventPrinter } from './import-display.js';

export function importCommand(ctx: CliContext) {
  return defineCommand({
    command: 'import <source..>',
    describe:
      'convert a VMware or Xen guest and run it on a node: disks into a pool, define, start, verify the boot',
    builder: (y) =>
      withNodeOptions(y)
        .positional('source', {
          type: 'string',
          array: true,
          demandOption: true,
          describe: 'a .vmx, .ovf or libvirt domain .xml file',
        })
        .option('input', {
          alias: 'i',
          choices: READER_KINDS,
          describe: 'the input kind (guessed from the source when not given)',
        })
        .option('connect', {
          alias: 'c',
          type: 'string',
          describe: 'libvirt URI on the node (default qemu:///system)',
        })
        .option('pool', {
          type: 'string',
          default: DEFAULT_POOL,
          describe: 'directory on the node for the disks, the domain XML and the console log',
        })
        .option('name', { type: 'string', describe: "the domain's name (default: the source's)" })
        .option('network', {
          type: 'string',
          array: true,
          describe: 'map a source network to a libvirt network: IN:OUT, or OUT for all; repeatable',
        })
        .option('bridge', {
          type: 'string',
          array: true,
          describe: 'map a source network to a host bridge: IN:OUT, or OUT for all; repeatable',
        })
        .option('storage', {
          choices: IMPORT_STORAGE,
          default: 'copy' as (typeof IMPORT_STORAGE)[number],
          describe:
            'copy: new disks, the source only read; snapshot: a qcow2 overlay over the source (this machine only)',
        })
        .option('output-format', {
          choices: ['qcow2', 'raw'] as const,
          default: 'qcow2' as 'qcow2' | 'raw',
          describe: 'format of the disks in the pool',
        })
        .option('domain-type', {
          choices: ['auto', 'kvm', 'qemu'] as const,
          default: 'auto' as 'auto' | 'kvm' | 'qemu',
          describe: 'libvirt domain type; auto: kvm where KVM works on this machine, else qemu',
        })
        .option('start', {
          type: 'boolean',
          default: true,
          describe: 'start the domain; --no-start: define it only',
        })
        .option('verify-boot', {
          type: 'boolean',
          default: false,
          describe: "watch the started domain's console for a login prompt",
        })
        .option('verify-timeout', {
          type: 'number',
          default: 300,
          describe: 'seconds --verify-boot waits',
        })
        .example('$0 import web.vmx --verify-boot', 'run a VMware guest on this machine')
        .example(
          '$0 import web.vmx --host ssh://root@kvm1 --pool /srv/images --network default',
          'on another node',
        ),
    handler: async (args) => {
      const kind: ReaderKind = args.input ?? guessKind(args.source);
      if (!(args['verify-timeout'] > 0)) {
        throw new UsageError(
          `--verify-timeout ${args['verify-timeout']}: give a number of seconds > 0`,
        );
      }
      const req: ImportRequest = {
        source: args.source,
        input: kind,
        target: nodeSpecFrom(args),
        connect: args.connect,
        pool: args.pool,
        name: args.name,
        networks: [
          ...(args.network ?? []).map((n) => parseNetworkMapping(n, 'network')),
          ...(args.bridge ?? []).map((n) => parseNetworkMapping(n, 'bridge')),
        ],
        storage: args.storage,
        outputFormat: args['output-format'],
        domainType: args['domain-type'],
        start: args.start,
        verifyBoot: args['verify-boot'],
        verifyTimeoutMs: args['verify-timeout'] * 1000,
      };
      // Every option is checked before any node is reached.
      Importer.checkRequest(req);
      // The conversion runs on this machine; the importer reaches the target node itself.
      const run = await createRunContainer(ctx.root, {});
      const importer = run.resolve<Importer>(TOKENS.Importer);
      const printer = importEventPrinter(ctx, args.json);
      const result = await importer.import(req, printer.onEvent).finally(printer.end);
      if (args.json) ctx.out(`${JSON.stringify({ event: 'result', ...result })}\n`);
      else ctx.out(formatImportResult(result));
    },
  });
}
