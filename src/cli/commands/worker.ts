/**
 * `v2v-load worker --queue URL`: a conversion host's worker for batches on the queue
 * (src/batch/queue/worker.ts). Runs until SIGINT/SIGTERM: then the stages in flight clean up
 * and go back to the queue for another worker; exit 130/143.
 */
import * as os from 'node:os';
import { checkQueue, parseQueueUrl } from '../../batch/queue/connection.js';
import { runQueueWorker, type WorkerEvent } from '../../batch/queue/worker.js';
import { UsageError } from '../../errors.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { QUEUE_OPTION } from './batch-queue.js';

const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function workerCommand(ctx: CliContext) {
  return defineCommand({
    command: 'worker',
    describe: 'take and run the items of batches on a queue (one per conversion host)',
    builder: (y) =>
      y
        .option('queue', { ...QUEUE_OPTION, demandOption: true })
        .option('concurrency', {
          alias: 'j',
          type: 'number',
          default: 1,
          describe: 'stages at once',
        })
        .option('label', {
          type: 'string',
          array: true,
          describe:
            'take also the items asking for this label (e.g. a datastore this host reaches); repeatable',
        })
        .option('lock-timeout', {
          type: 'number',
          default: 30,
          describe:
            'seconds: a job whose worker stops renewing its lock (killed, cut off) for this long goes to another worker',
        })
        .option('worker-name', {
          type: 'string',
          describe: `this worker's name in reports (default HOST/PID, here ${os.hostname()}/${process.pid})`,
        })
        .example('$0 worker --queue redis://10.0.0.5:6379/0 --label ds-gold', 'a conversion host'),
    handler: async (args) => {
      const n = args.concurrency;
      if (!(Number.isInteger(n) && n >= 1 && n <= 64)) {
        throw new UsageError(`--concurrency ${n}: give a whole number from 1 to 64`);
      }
      if (!(args.lockTimeout >= 2 && args.lockTimeout <= 3600)) {
        throw new UsageError(`--lock-timeout ${args.lockTimeout}: give seconds from 2 to 3600`);
      }
      for (const l of args.label ?? []) {
        if (!LABEL_RE.test(l)) {
          throw new UsageError(
            `--label ${JSON.stringify(l)}: use letters, digits, '.', '_' and '-'`,
          );
        }
      }
      const target = parseQueueUrl(args.queue);
      await checkQueue(target);
      const onEvent = (e: WorkerEvent) => {
        if (args.json) {
          const { type, ...rest } = e;
          ctx.out(`${JSON.stringify({ event: type, ...rest })}\n`);
          return;
        }
        if (e.type === 'ready') {
          ctx.log.info(`worker ${e.worker} on ${target.display}: taking ${e.queues.join(', ')}`);
        } else if (e.type === 'stage') {
          if (e.state === 'start') ctx.log.info(`${e.job}: started (attempt ${e.attempt})`);
          else if (e.state === 'done')
            ctx.log.info(`${e.job}: done (${(e.ms / 1000).toFixed(1)} s)`);
          else if (e.state === 'returned') ctx.log.info(`${e.job}: handed back to the queue`);
          else if (e.state === 'lost') {
            ctx.log.warn(`${e.job}: its lock ran out; stopped here, the queue hands it over`);
          } else {
            ctx.log.warn(
              `${e.job}: failed${e.retry ? ' (will be tried again)' : ''}: ${e.message.split('\n')[0]}`,
            );
          }
        } else if (e.type === 'item') {
          if (e.status === 'failed') ctx.log.warn(`${e.job}: item failed`);
          else ctx.log.info(`${e.job}: item done`);
        }
      };
      await runQueueWorker(ctx.root, target, {
        concurrency: n,
        labels: args.label ?? [],
        lockMs: args.lockTimeout * 1000,
        name: args.workerName,
        scope: ctx.scope,
        onEvent,
      });
      if (ctx.scope.interruption) throw ctx.scope.interruption;
    },
  });
}
