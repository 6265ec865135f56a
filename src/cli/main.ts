/**
 * The `v2v-load` command line: yargs wiring, global options, error reporting and exit codes.
 * Each command lives in ./commands/ and gets a {@link CliContext}.
 */
import { createRequire } from 'node:module';
import type { DependencyContainer } from 'tsyringe';
import yargs from 'yargs';
import { createRootContainer } from '../di/composition-root.js';
import { TOKENS } from '../di/tokens.js';
import { ExitCode, UsageError, V2vError } from '../errors.js';
import { type Logger, levelFromFlags, StreamLogger } from '../log/logger.js';
import { redactSecrets } from '../log/redact.js';
import type { NodeFactory } from '../node/node-factory.js';
import { handleProcessSignals } from '../run/process-signals.js';
import { RunScope } from '../run/run-scope.js';
import { batchCommand } from './commands/batch.js';
import { convertCommand } from './commands/convert.js';
import { doctorCommand } from './commands/doctor.js';
import { domainCommand } from './commands/domain.js';
import { imageCommand } from './commands/image/index.js';
import { importCommand } from './commands/import.js';
import { inspectCommand } from './commands/inspect.js';
import { vclCommand } from './commands/vcl.js';
import { workerCommand } from './commands/worker.js';
import type { CliContext, GlobalArgs } from './context.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

function flagCount(args: readonly string[], short: string, long: string): number {
  let n = 0;
  for (const a of args) {
    if (a === `--${long}`) n++;
    else if (/^-[a-zA-Z]+$/.test(a)) n += [...a.slice(1)].filter((c) => c === short).length;
  }
  return n;
}

function reportError(e: unknown, json: boolean, io: CliIo, log: Logger): number {
  if (e instanceof V2vError) {
    log.error(e.message);
    if (e.hint) io.stderr(`v2v-load: hint: ${e.hint}\n`);
    if (json) io.stdout(`${JSON.stringify(e.toJSON())}\n`);
    return e.exitStatus;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  log.error(`internal error: ${err.message}`);
  log.debug(err.stack ?? '');
  if (json) {
    const message = redactSecrets(err.message);
    io.stdout(`${JSON.stringify({ error: 'InternalError', message })}\n`);
  }
  return ExitCode.Failure;
}

/** Options of {@link main}. */
export interface MainOptions {
  /**
   * Handle SIGINT and SIGTERM of this process (bin/v2v-load.js does): they interrupt the run,
   * which cleans up and resolves to 130 or 143.
   */
  processSignals?: boolean;
  /**
   * Called with the root container once the composition root has filled it: a test (or an
   * embedding program) registers another module for a token here, e.g. a MetadataReader.
   */
  configure?: (root: DependencyContainer) => void;
}

/**
 * Runs the CLI with `args` (without node and script); resolves to the exit status. Never calls
 * process.exit (but a third SIGINT/SIGTERM with `processSignals` does).
 */
export async function main(
  args: readonly string[],
  io: CliIo = processIo,
  options: MainOptions = {},
): Promise<number> {
  // The log level is needed before yargs has parsed (errors while parsing are logged too).
  const json = args.includes('--json');
  const log = new StreamLogger(
    levelFromFlags(flagCount(args, 'v', 'verbose'), flagCount(args, 'q', 'quiet')),
    io.stderr,
  );
  const root = createRootContainer(log);
  // One invocation is one run: one AbortSignal, one cleanup stack (run at the end).
  const scope = new RunScope(log);
  root.register(TOKENS.RunScope, { useValue: scope });
  options.configure?.(root);
  const releaseSignals = options.processSignals ? handleProcessSignals(scope, log) : () => {};
  let status: number = ExitCode.Ok;
  const ctx: CliContext = {
    root,
    scope,
    log,
    out: io.stdout,
    setExit: (s) => {
      status = s;
    },
  };

  const parser = yargs()
    .scriptName('v2v-load')
    .usage(
      '$0 <command> [options]\n\nConvert VMware and Xen guests to KVM; provision them on libvirt.',
    )
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'machine-readable output on stdout',
    })
    .option('verbose', { alias: 'v', type: 'count', describe: 'more diagnostics on stderr' })
    .option('quiet', { alias: 'q', type: 'count', describe: 'fewer diagnostics on stderr' })
    .command(doctorCommand(ctx))
    .command(domainCommand(ctx))
    .command(inspectCommand(ctx))
    .command(imageCommand(ctx))
    .command(convertCommand(ctx))
    .command(vclCommand(ctx))
    .command(importCommand(ctx))
    .command(batchCommand(ctx))
    .command(workerCommand(ctx))
    .demandCommand(1, 'give a command (see --help)')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(pkg.version)
    .epilog(
      'Exit status: 0 ok, 1 failure, 2 usage error, 3 node unreachable or host key not trusted, ' +
        '130 interrupted by SIGINT, 143 by SIGTERM (what the run made is cleaned up first).',
    )
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });

  try {
    // The parse callback receives what yargs would print (help, version) instead of printing
    // it, so all output goes through `io`.
    let output = '';
    await parser.parseAsync([...args], {}, (_err, _argv, text) => {
      output = text;
    });
    if (output) io.stdout(output.endsWith('\n') ? output : `${output}\n`);
  } catch (e) {
    // After an interruption, whatever failed failed because of it: report the interruption.
    status = reportError(scope.interruption ?? e, json, io, log);
  } finally {
    await scope.cleanup.run();
    await root.resolve<NodeFactory>(TOKENS.NodeFactory).closeAll();
    releaseSignals();
  }
  return status;
}

export type { GlobalArgs };
