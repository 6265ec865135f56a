import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { UsageError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { READER_KINDS, type ReaderKind } from '../../metadata/model.js';
import { formatGuest, guestToJson } from '../../metadata/printer.js';
import type { MetadataReader, ReaderOptions } from '../../metadata/reader.js';
import { guessKind, readerFor, readerOptionSpecs } from '../../metadata/registry.js';
import type { Node } from '../../node/node.js';
import { scratchName } from '../../node/scratch.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { nodeSpecFrom, withNodeOptions } from '../node-options.js';

/**
 * The readers' own options (second pass of the design): each flag given must belong to the
 * chosen reader, and is parsed by that reader's declaration.
 */
export function readerOptionsFrom(
  args: Record<string, unknown>,
  kind: ReaderKind,
  readers?: readonly MetadataReader[],
): ReaderOptions {
  const options: Record<string, unknown> = {};
  for (const [flag, { spec, kinds }] of readerOptionSpecs(readers)) {
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

/** Every registered reader's options, under "Reader options:", each naming its readers. */
function withReaderOptions<T>(y: Argv<T>, readers: readonly MetadataReader[]): Argv<T> {
  for (const [flag, { spec, kinds }] of readerOptionSpecs(readers)) {
    y.option(flag, {
      type: spec.type === 'array' ? 'string' : spec.type,
      ...(spec.type === 'array' ? { array: true } : {}),
      ...(spec.alias ? { alias: spec.alias } : {}),
      describe: `-i ${kinds.join('|')}: ${spec.describe}`,
      group: 'Reader options:',
    });
  }
  return y;
}

export function inspectCommand(ctx: CliContext) {
  const readers = () => ctx.root.resolveAll<MetadataReader>(TOKENS.MetadataReader);
  return defineCommand({
    command: 'inspect <source..>',
    describe: "read a source guest's metadata (vmx, ova, ovf, libvirt XML, libvirt domain, disks)",
    builder: (y) =>
      withReaderOptions(
        withNodeOptions(y)
          .positional('source', {
            type: 'string',
            array: true,
            demandOption: true,
            describe:
              'a .vmx, .ova, .ovf or domain .xml file, a libvirt domain name, or disk images',
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
          .example('$0 inspect disk1.qcow2 --name web --memory 2G --vcpus 2', 'bare disks'),
        readers(),
      ),
    handler: async (args) => {
      const sources = args.source;
      const all = readers();
      const kind = args.input ?? guessKind(sources);
      const reader = readerFor(kind, all);
      const options = readerOptionsFrom(args, kind, all);
      // First pass: every option is checked before anything is read or any node is reached.
      reader.check(sources, options);
      const run = await createRunContainer(ctx.root, nodeSpecFrom(args));
      // Named for this run: one killed outright leaves it to a later conversion's sweep.
      const tmpDir = scratchName(path.join(os.tmpdir(), 'v2v-load-inspect-'));
      await fs.mkdir(tmpDir, { mode: 0o700 });
      try {
        const guest = await reader.read(sources, options, {
          node: run.resolve<Node>(TOKENS.Node),
          log: run.resolve<Logger>(TOKENS.Logger),
          tmpDir,
          signal: ctx.scope.signal,
          cleanup: ctx.scope.cleanup,
        });
        ctx.out(args.json ? guestToJson(guest) : formatGuest(guest));
      } finally {
        await fs.rm(tmpDir, { recursive: true, force: true });
      }
    },
  });
}
