/**
 * The queue mode of `v2v-load batch` (src/batch/queue/): `batch MANIFEST --queue URL` enqueues
 * the items and returns (or follows them with `--follow`); `batch status BATCH --queue URL`
 * prints the same report as the embedded batch.
 */
import * as path from 'node:path';
import type { BatchManifest } from '../../batch/manifest.js';
import { QueueClient } from '../../batch/queue/client.js';
import { checkQueue, parseQueueUrl } from '../../batch/queue/connection.js';
import { BATCH_NAME_RE } from '../../batch/queue/model.js';
import { type BatchReport, formatReportTable } from '../../batch/report.js';
import { ExitCode, UsageError } from '../../errors.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { writeReport } from './batch.js';

export const QUEUE_OPTION = {
  type: 'string',
  describe:
    'run the batch on a BullMQ queue in this Redis: redis://HOST:PORT/DB (password: in the URL or V2V_LOAD_REDIS_PASSWORD)',
} as const;

/** `--name`, or the manifest's file name without its extension. */
export function batchName(manifestFile: string, name: string | undefined): string {
  const n = name ?? path.basename(manifestFile).replace(/\.(json|ya?ml)$/i, '');
  if (!BATCH_NAME_RE.test(n)) {
    throw new UsageError(
      `--name ${JSON.stringify(n)}: use letters, digits, '.', '_', '+' and '-' (at most 64)`,
      name ? {} : { hint: 'give the batch a name with --name' },
    );
  }
  return n;
}

function printReport(ctx: CliContext, json: boolean, report: BatchReport): void {
  if (json) ctx.out(`${JSON.stringify({ event: 'report', ...report })}\n`);
  else ctx.out(formatReportTable(report));
  if (report.counts.failed) ctx.setExit(ExitCode.Failure);
}

async function follow(
  ctx: CliContext,
  client: QueueClient,
  name: string,
  json: boolean,
): Promise<BatchReport> {
  return client.follow(
    name,
    (i) => {
      if (json) {
        ctx.out(
          `${JSON.stringify({
            event: 'item',
            key: i.key,
            status: i.status,
            ...(i.stage ? { stage: i.stage } : {}),
            ...(i.worker ? { worker: i.worker } : {}),
            ...(i.error ? { message: i.error } : {}),
          })}\n`,
        );
      } else if (i.status === 'failed') {
        ctx.log.warn(`${i.key}: failed: ${(i.error ?? '').split('\n')[0]}`);
      } else if (i.status !== 'pending') {
        ctx.log.info(
          `${i.key}: ${i.status}${i.stage ? ` (${i.stage})` : ''}${i.worker ? ` on ${i.worker}` : ''}`,
        );
      }
    },
    ctx.scope.signal,
  );
}

/** `batch MANIFEST --queue URL [--name BATCH] [--follow]`. */
export async function enqueueBatch(
  ctx: CliContext,
  manifest: BatchManifest,
  args: {
    queue: string;
    name?: string | undefined;
    follow?: boolean;
    json: boolean;
    report?: string[];
  },
): Promise<void> {
  const target = parseQueueUrl(args.queue);
  const name = batchName(manifest.file, args.name);
  await checkQueue(target);
  const client = new QueueClient(target);
  try {
    const meta = await client.enqueue(manifest, name);
    if (args.json) {
      ctx.out(
        `${JSON.stringify({ event: 'enqueued', batch: name, queue: target.display, items: meta.items.length })}\n`,
      );
    } else {
      ctx.log.info(`batch ${name}: ${meta.items.length} items enqueued on ${target.display}`);
    }
    if (!args.follow) {
      if (!args.json) ctx.out(`${name}\n`);
      return;
    }
    const report = await follow(ctx, client, name, args.json);
    for (const f of args.report ?? []) await writeReport(path.resolve(f), report);
    printReport(ctx, args.json, report);
  } finally {
    await client.close();
  }
}

export function batchStatusCommand(ctx: CliContext) {
  return defineCommand({
    command: 'status <batch>',
    describe: 'the report of a batch on a queue: per item its stage, worker, times, sizes, error',
    builder: (y) =>
      y
        .positional('batch', { type: 'string', demandOption: true, describe: 'the batch name' })
        .option('queue', { ...QUEUE_OPTION, demandOption: true })
        .option('follow', {
          type: 'boolean',
          default: false,
          describe: 'wait until every item is done or failed, telling each change',
        })
        .option('report', {
          type: 'string',
          array: true,
          describe: 'also write the report: FILE.json, or FILE.html; repeatable',
        })
        .example('$0 batch status wave1 --queue redis://10.0.0.5:6379/0', 'where wave1 is'),
    handler: async (args) => {
      const target = parseQueueUrl(args.queue);
      await checkQueue(target);
      const client = new QueueClient(target);
      try {
        const report = args.follow
          ? await follow(ctx, client, args.batch, args.json)
          : (await client.report(args.batch)).report;
        for (const f of args.report ?? []) await writeReport(path.resolve(f), report);
        printReport(ctx, args.json, report);
      } finally {
        await client.close();
      }
    },
  });
}
