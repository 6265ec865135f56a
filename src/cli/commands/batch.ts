/**
 * `v2v-load batch MANIFEST`: the imports of a manifest, N at a time, with a state file that
 * makes a killed batch resumable and a report (terminal table; JSON; HTML with a stage
 * timeline). See src/batch/.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { loadManifest } from '../../batch/manifest.js';
import { type BatchReport, formatReportTable, renderReportHtml } from '../../batch/report.js';
import { type BatchEvent, defaultConcurrency, runBatch } from '../../batch/runner.js';
import { UsageError } from '../../errors.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { batchStatusCommand, enqueueBatch, QUEUE_OPTION } from './batch-queue.js';

/** Writes the report to FILE: `.html` as the page, anything else as JSON. */
export async function writeReport(file: string, report: BatchReport): Promise<void> {
  const text = /\.html?$/i.test(file)
    ? renderReportHtml(report)
    : `${JSON.stringify(report, null, 2)}\n`;
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, text, { mode: 0o644 });
  await fs.rename(tmp, file);
}

export function batchCommand(ctx: CliContext) {
  return defineCommand({
    command: 'batch [manifest]',
    describe:
      'import many guests from a manifest (JSON or YAML), N at a time, resumable; or on a queue of workers',
    builder: (y) =>
      y
        .command(batchStatusCommand(ctx))
        .positional('manifest', {
          type: 'string',
          global: false,
          describe:
            'JSON or YAML: items: [{source, name, host, connect, pool, network, storage, outputFormat, domainType, start, verifyBoot, verifyTimeout, input, identity, knownHosts}], defaults: {...}',
        })
        .option('concurrency', {
          global: false,
          alias: 'j',
          type: 'number',
          describe: `items at once (default: by cores and free memory, here ${defaultConcurrency()})`,
        })
        .option('state', {
          global: false,
          type: 'string',
          describe: 'state file: a rerun skips done items (default: MANIFEST.state.json)',
        })
        .option('report', {
          global: false,
          type: 'string',
          array: true,
          describe:
            'write the report: FILE.json, or FILE.html (a page with a stage timeline); repeatable',
        })
        .option('queue', { ...QUEUE_OPTION, global: false })
        .option('name', {
          global: false,
          type: 'string',
          describe: "with --queue: the batch's name (default: the manifest's file name)",
        })
        .option('follow', {
          global: false,
          type: 'boolean',
          default: false,
          describe: 'with --queue: wait until every item is done or failed, telling each change',
        })
        .example('$0 batch wave1.yaml --report wave1.html', 'import a wave, report as a page')
        .example(
          '$0 batch wave1.yaml --queue redis://10.0.0.5:6379/0',
          'enqueue it for the workers (v2v-load worker) and return',
        ),
    handler: async (args) => {
      const n = args.concurrency;
      if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 64)) {
        throw new UsageError(`--concurrency ${n}: give a whole number from 1 to 64`);
      }
      if (args.queue !== undefined) {
        for (const [set, opt] of [
          [n !== undefined, '--concurrency'],
          [args.state !== undefined, '--state'],
        ] as const) {
          if (set) {
            throw new UsageError(
              `${opt} is for the embedded batch: with --queue the workers run the items and the queue keeps their state`,
              { hint: 'give each worker its --concurrency (v2v-load worker)' },
            );
          }
        }
        if (args.report?.length && !args.follow) {
          throw new UsageError('--report with --queue needs --follow (or use batch status)');
        }
      } else if (args.name !== undefined || args.follow) {
        throw new UsageError(`--${args.follow ? 'follow' : 'name'} needs --queue`);
      }
      if (!args.manifest) {
        throw new UsageError('give a MANIFEST (or: batch status BATCH --queue URL)');
      }
      const manifest = await loadManifest(path.resolve(args.manifest));
      if (args.queue !== undefined) {
        await enqueueBatch(ctx, manifest, {
          queue: args.queue,
          name: args.name,
          follow: args.follow,
          json: args.json,
          report: args.report,
        });
        return;
      }
      const onEvent = (e: BatchEvent) => {
        if (args.json) {
          const { type, ...rest } = e;
          ctx.out(`${JSON.stringify({ event: type, ...rest })}\n`);
        } else if (e.type === 'item') {
          const msg = e.message ? `: ${e.message.split('\n')[0]}` : '';
          if (e.status === 'failed') ctx.log.warn(`${e.key}: failed${msg}`);
          else ctx.log.info(`${e.key}: ${e.status}${msg}`);
        } else if (e.type === 'item-stage' && e.state === 'start') {
          ctx.log.info(`${e.key}: ${e.stage} ...`);
        } else if (e.type === 'item-retry') {
          ctx.log.warn(`${e.key}: retrying (${e.reason.split('\n')[0]})`);
        }
      };
      const report = await runBatch(ctx.root, manifest, {
        concurrency: n,
        stateFile: args.state && path.resolve(args.state),
        scope: ctx.scope,
        onEvent,
      });
      for (const f of args.report ?? []) await writeReport(path.resolve(f), report);
      if (args.json) ctx.out(`${JSON.stringify({ event: 'report', ...report })}\n`);
      else ctx.out(formatReportTable(report));
      // Interrupted: the items in flight were cleaned up and stay to do; exit 130/143.
      if (ctx.scope.interruption) throw ctx.scope.interruption;
      if (report.counts.failed || report.counts.pending) ctx.setExit(1);
    },
  });
}
