import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { UsageError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { READER_KINDS, type ReaderKind } from '../../metadata/model.js';
import { formatGuest, guestToJson } from '../../metadata/printer.js';
import type { ReaderOptions } from '../../metadata/reader.js';
import { guessKind, readerFor, readerOptionSpecs } from '../../metadata/registry.js';
import type { Node } from '../../node/node.js';
import type { CliContext, GlobalArgs } from '../context.js';
import { type NodeArgs, nodeSpecFrom, withNodeOptions } from '../node-options.js';

interface InspectArgs extends GlobalArgs, NodeArgs {
  source: string[];
  input?: ReaderKind | undefined;
  [flag: string]: unknown;
}

/**
 * The readers' own options (second pass of the design): each flag given must belong to the
 * chosen reader, and is parsed by that reader's declaration.
 */
export function readerOptionsFrom(args: Record<string, unknown>, kind: ReaderKind): ReaderOptions {
  const options: Record<string, unknown> = {};
  for (const [flag, { spec, kinds }] of readerOptionSpecs()) {
    const raw = args[flag];
    if (raw === undefined) continue;
    if (!kinds.includes(kind)) {
      throw new UsageError(`--${flag} applies to -i ${kinds.join('|')}, not to -i ${kind}`);
    }
    if (spec.type === 'number' && (typeof raw !== 'number' || Number.isNaN(raw))) {
      throw new UsageError(`--${flag} '${String(args[flag])}': not a number`);
    }
    options[spec.key] = spec.parse ? spec.parse(String(raw), flag) : raw;
  }
  return options as ReaderOptions;
}

export function inspectCommand(ctx: CliContext): CommandModule<GlobalArgs, InspectArgs> {
  return {
    command: 'inspect <source..>',
    describe: "read a source guest's metadata (vmx, ova, ovf, libvirt XML, libvirt domain, disks)",
    builder: (y) => {
      let b = withNodeOptions(y)
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
        .example('$0 inspect guest.vmx', 'read a VMware guest')
        .example('$0 inspect appliance.ova --json', 'the same model as JSON')
        .example(
          '$0 inspect -i libvirt web01 --host ssh://root@xenhost',
          'a domain on a remote host',
        )
        .example('$0 inspect disk1.qcow2 --name web --memory 2G --vcpus 2', 'bare disks');
      for (const [flag, { spec, kinds }] of readerOptionSpecs()) {
        b = b.option(flag, {
          type: spec.type === 'array' ? 'string' : spec.type,
          ...(spec.type === 'array' ? { array: true } : {}),
          describe: `-i ${kinds.join('|')}: ${spec.describe}`,
          group: 'Reader options:',
        });
      }
      return b as never;
    },
    handler: async (args) => {
      const sources = args.source;
      const kind = args.input ?? guessKind(sources);
      const reader = readerFor(kind);
      const options = readerOptionsFrom(args, kind);
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
