/**
 * `v2v-load worker`: takes the jobs of batches on the queue (see model.ts) and runs them, N
 * stages at a time, until it is stopped.
 *
 * - An item job adds its next stage as a child and waits for it (cheap: any worker does it).
 * - A stage job runs one staged import (src/import/importer.ts, `StagedRun`) in a scope of its
 *   own: the import record of the item is taken over from the earlier stage, or from a dead
 *   worker (BullMQ's stalled-job check hands a job whose worker stopped renewing its lock to
 *   another worker), whose leftovers it removes first.
 * - A failure is tried again with a growing pause only when it may pass (libvirtd or the node
 *   unreachable, the item's import record busy); anything else (a bad source, a full disk)
 *   fails the item at once (UnrecoverableError). An item that failed for good is discarded:
 *   what its stages made on the node is removed.
 * - Stopping (SIGINT/SIGTERM): no new job is taken, the stages in flight are interrupted, clean
 *   up what they were making, and their jobs go back to the queue for another worker.
 */
import * as os from 'node:os';
import {
  type Job,
  Queue,
  UnrecoverableError,
  WaitingChildrenError,
  WaitingError,
  Worker,
} from 'bullmq';
import type { DependencyContainer } from 'tsyringe';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { NodeUnreachableError, V2vError } from '../../errors.js';
import { ImportBusyError } from '../../import/errors.js';
import type { ImportEvent, Importer, ImportStage } from '../../import/importer.js';
import { isLibvirtUnreachable } from '../../import/libvirt-retry.js';
import type { Logger } from '../../log/logger.js';
import { RunScope } from '../../run/run-scope.js';
import type { StageSpan } from '../state.js';
import { checkQueue, type QueueTarget, redisOptions } from './connection.js';
import {
  hostQueue,
  ITEMS_QUEUE,
  type ItemJobData,
  QUEUE_PREFIX,
  type QueueStage,
  RETRY_DELAY_MS,
  recordOwner,
  STAGE_ATTEMPTS,
  STAGE_PARTS,
  type StageError,
  type StageJobData,
  type StageProgress,
  type StageResult,
  stageJobId,
  stageQueue,
  stagesOf,
} from './model.js';

export type WorkerEvent =
  | { type: 'ready'; worker: string; queues: string[] }
  | { type: 'stage'; state: 'start'; job: string; stage: QueueStage; attempt: number }
  | { type: 'stage'; state: 'done'; job: string; stage: QueueStage; ms: number }
  | {
      type: 'stage';
      state: 'failed';
      job: string;
      stage: QueueStage;
      message: string;
      retry: boolean;
    }
  | { type: 'stage'; state: 'returned'; job: string; stage: QueueStage }
  /** The job's lock ran out (Redis away longer than the lock): stopped here, handed over. */
  | { type: 'stage'; state: 'lost'; job: string; stage: QueueStage }
  | { type: 'item'; job: string; status: 'done' | 'failed'; message?: string }
  | { type: 'redis'; message: string };

export interface WorkerOptions {
  /** Stages at once (default 1). */
  concurrency?: number | undefined;
  /** Labels this worker has: it takes the items asking for one of them, and unlabelled ones. */
  labels?: readonly string[] | undefined;
  /** A job whose worker stops renewing its lock for this long goes to another worker. */
  lockMs?: number | undefined;
  /** The worker's name in reports (default HOST/PID). */
  name?: string | undefined;
  /** The host's name: its stage queue (default the machine's host name). */
  host?: string | undefined;
  /** Interrupts the stages in flight and stops the worker. */
  scope: RunScope;
  onEvent?: ((e: WorkerEvent) => void) | undefined;
}

export function retryable(e: unknown): boolean {
  return (
    isLibvirtUnreachable(e) ||
    (e instanceof NodeUnreachableError && e.retryable) ||
    e instanceof ImportBusyError
  );
}

function errorOf(e: unknown, stage: string | undefined): StageError {
  const base =
    e instanceof V2vError
      ? { message: e.message, hint: e.hint, code: e.code }
      : { message: e instanceof Error ? e.message : String(e), code: 'INTERNAL' };
  return { ...base, ...(stage ? { stage } : {}) };
}

/** The import stage the queue stage runs up to. */
const UP_TO: Record<QueueStage, ImportStage> = {
  convert: 'convert',
  place: 'place',
  start: 'start',
  'verify-boot': 'verify-boot',
};

/** Runs a worker until `opts.scope` is interrupted; then stops it and resolves. */
export async function runQueueWorker(
  root: DependencyContainer,
  target: QueueTarget,
  opts: WorkerOptions,
): Promise<void> {
  const log = root.resolve<Logger>(TOKENS.Logger);
  const emit = opts.onEvent ?? (() => {});
  const host = opts.host ?? os.hostname();
  const name = opts.name ?? `${host}/${process.pid}`;
  const concurrency = opts.concurrency ?? 1;
  const lockDuration = opts.lockMs ?? 30_000;
  const slots = stageSlots(concurrency);
  // Redis away while the worker stops: the connections stop trying again, so nothing is left.
  let stopping = false;
  const retryStrategy = (times: number) => (stopping ? null : Math.min(200 * times, 2000));
  const connection = { ...redisOptions(target), retryStrategy };
  const common = {
    connection,
    prefix: QUEUE_PREFIX,
    name,
    lockDuration,
    stalledInterval: Math.max(1000, Math.round(lockDuration / 2)),
    maxStalledCount: 3,
  };
  const queues = new Map<string, Queue>();
  const queue = (q: string) => {
    let it = queues.get(q);
    if (!it) {
      it = new Queue(q, { connection, prefix: QUEUE_PREFIX });
      it.on('error', () => {});
      queues.set(q, it);
    }
    return it;
  };

  /**
   * One stage run. `lost` aborts when the job's lock could not be renewed: the queue counts the
   * job as stalled and hands it to a worker again, so this run stops and cleans up at once (the
   * next run waits for that: the item's import record says a run is still at work).
   */
  const runStage = async (
    job: Job<StageJobData, StageResult>,
    token?: string,
    lost?: AbortSignal,
  ): Promise<StageResult> => {
    const d = job.data;
    const jobName = job.id ?? '?';
    if (lost?.aborted) {
      // Lost while it waited for a slot: never started here.
      emit({ type: 'stage', state: 'lost', job: jobName, stage: d.stage });
      throw new WaitingError();
    }
    if (opts.scope.signal.aborted) {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const attempt = job.attemptsMade + 1;
    const started = Date.now();
    const progress: StageProgress = { worker: name, host, started };
    await job.updateProgress({ ...progress });
    emit({ type: 'stage', state: 'start', job: jobName, stage: d.stage, attempt });
    log.debug(`${jobName}: attempt ${attempt} on ${name}`);
    const scope = new RunScope(log);
    const onAbort = () => scope.interrupt(opts.scope.interruption?.signal ?? 'SIGTERM');
    opts.scope.signal.addEventListener('abort', onAbort, { once: true });
    if (opts.scope.signal.aborted) onAbort();
    const onLost = () => {
      log.warn(
        `${jobName}: its lock on the queue ran out (Redis away for longer than --lock-timeout?): stopped here, the queue hands it over`,
      );
      scope.interrupt('SIGTERM');
    };
    lost?.addEventListener('abort', onLost, { once: true });
    if (lost?.aborted) onLost(); // lost while Redis held the progress update above
    const spans: StageSpan[] = [];
    let current: StageSpan | undefined;
    const parts = STAGE_PARTS[d.stage];
    const owner = recordOwner(d.batch, d.key);
    try {
      const run = await createRunContainer(root, {}, { scope });
      const importer = run.resolve<Importer>(TOKENS.Importer);
      const r = await importer.import(
        d.request,
        (e: ImportEvent) => {
          if (e.type === 'warning') log.warn(`${jobName}: ${e.message}`);
          if (e.type !== 'stage' || !parts.includes(e.stage)) return;
          if (e.state === 'start') {
            current = { stage: e.stage, start: Date.now() };
            spans.push(current);
            void job.updateProgress({ ...progress, part: e.stage }).catch(() => {});
          } else if (current) {
            current.end = Date.now();
            current.ok = true;
          }
        },
        { owner, upTo: UP_TO[d.stage] },
      );
      const ended = Date.now();
      // 'done' is told once the queue took the result (the worker's 'completed' event).
      return {
        stage: d.stage,
        worker: name,
        host,
        started,
        ended,
        spans,
        result: {
          name: r.name,
          node: r.node,
          uri: r.uri,
          state: r.state,
          xmlPath: r.xmlPath,
          disks: r.disks.map((x) => ({ path: x.path, bytes: x.bytes })),
          booted: r.verify?.booted,
          bootSeconds: r.verify?.seconds,
        },
      } satisfies StageResult;
    } catch (e) {
      await scope.cleanup.run();
      if (lost?.aborted) {
        // Not ours any more: no failure recorded, nothing discarded; the stalled-job check
        // moves the job back to wait.
        emit({ type: 'stage', state: 'lost', job: jobName, stage: d.stage });
        throw new WaitingError();
      }
      if (opts.scope.signal.aborted) {
        // This worker stops: the job goes back for another one (not a failed attempt).
        emit({ type: 'stage', state: 'returned', job: jobName, stage: d.stage });
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const failedPart = current && current.end === undefined ? current.stage : undefined;
      if (current && current.end === undefined) {
        current.end = Date.now();
        current.ok = false;
      }
      const error = errorOf(e, failedPart ?? parts[0]);
      const again = retryable(e) && attempt < (job.opts.attempts ?? 1);
      await job.updateData({ ...d, error });
      emit({
        type: 'stage',
        state: 'failed',
        job: jobName,
        stage: d.stage,
        message: error.message,
        retry: again,
      });
      if (!again) {
        // For good: what the item's stages made goes.
        const run = await createRunContainer(root, {}, { scope: new RunScope(log) });
        await run
          .resolve<Importer>(TOKENS.Importer)
          .discard(d.request, owner)
          .catch((x: unknown) => log.warn(`${jobName}: clean-up: ${(x as Error).message}`));
      }
      if (!retryable(e)) throw new UnrecoverableError(error.message);
      throw new Error(error.message);
    } finally {
      await scope.cleanup.run();
      opts.scope.signal.removeEventListener('abort', onAbort);
      lost?.removeEventListener('abort', onLost);
    }
  };

  const stageOptions = (batch: string, key: string, stage: QueueStage, parent: Job) => ({
    jobId: stageJobId(batch, key, stage),
    parent: { id: parent.id as string, queue: parent.queueQualifiedName },
    attempts: STAGE_ATTEMPTS,
    backoff: { type: 'exponential', delay: RETRY_DELAY_MS },
    ignoreDependencyOnFailure: true,
  });

  /** An item: add its next stage as a child and wait, or end it. */
  const runItem = async (job: Job<ItemJobData>, token?: string) => {
    for (;;) {
      const failures = Object.values(await job.getIgnoredChildrenFailures());
      if (failures.length) {
        emit({ type: 'item', job: job.id ?? '?', status: 'failed', message: failures[0] });
        throw new UnrecoverableError(failures[0]);
      }
      const done = Object.values(await job.getChildrenValues()) as StageResult[];
      const plan = stagesOf(job.data.request);
      const next = plan.find((s) => !done.some((r) => r.stage === s));
      if (!next) {
        // Every stage's result is in: the item's import record goes (a Redis outage may lose
        // this job's completion; a run again finds no record and ends the same).
        const run = await createRunContainer(root, {}, { scope: new RunScope(log) });
        // The stages found the guest's name: the source is not read again for it.
        const request = {
          ...job.data.request,
          name: job.data.request.name ?? done[0]?.result?.name,
        };
        await run
          .resolve<Importer>(TOKENS.Importer)
          .finish(request, recordOwner(job.data.batch, job.data.key));
        emit({ type: 'item', job: job.id ?? '?', status: 'done' });
        return { stages: done.map((r) => r.stage) };
      }
      const converted = done.find((r) => r.stage === 'convert');
      const q = converted ? hostQueue(converted.host) : stageQueue(job.data.queueLabel);
      const { batch, key, request } = job.data;
      await queue(q).add(
        next,
        { batch, key, stage: next, request } satisfies StageJobData,
        stageOptions(batch, key, next, job),
      );
      await job.updateData({ ...job.data, queues: { ...job.data.queues, [next]: q } });
      if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
    }
  };

  const names = [stageQueue(), ...(opts.labels ?? []).map((l) => stageQueue(l)), hostQueue(host)];
  const stageWorkers = names.map((q) => {
    const w = new Worker(
      q,
      (job: Job<StageJobData, StageResult>, token?: string, lost?: AbortSignal) =>
        // An item's later stages go first: items are finished before more are started.
        slots(q === hostQueue(host) ? 0 : 1, () => runStage(job, token, lost)),
      { ...common, concurrency },
    );
    // A lock that could not be renewed: the job is the queue's again; its run here stops.
    w.on('lockRenewalFailed', (ids: string[]) => {
      for (const id of ids) w.cancelJob(id, 'lock lost');
    });
    w.on('completed', (job: Job<StageJobData, StageResult>, r: StageResult) =>
      emit({
        type: 'stage',
        state: 'done',
        job: job.id ?? '?',
        stage: job.data.stage,
        ms: r.ended - r.started,
      }),
    );
    return w;
  });
  const workers: Worker[] = [
    new Worker(ITEMS_QUEUE, runItem, { ...common, concurrency: 16 }),
    ...stageWorkers,
  ];
  let lastError = '';
  for (const w of workers) {
    w.on('error', (e: Error) => {
      // Redis away (a restart): ioredis reconnects; say so once per kind of error.
      if (e.message !== lastError) {
        lastError = e.message;
        emit({ type: 'redis', message: e.message });
        log.warn(`queue ${target.display}: ${e.message}`);
      }
    });
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  emit({ type: 'ready', worker: name, queues: [ITEMS_QUEUE, ...names] });
  await new Promise<void>((resolve) => {
    if (opts.scope.signal.aborted) resolve();
    else opts.scope.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  // Stop taking jobs; the stages in flight are interrupted and hand their jobs back. With Redis
  // away that cannot be told to it: the connections are dropped (and stop trying again), and
  // the jobs in flight go to another worker by the stalled-job check.
  const all = [...workers, ...queues.values()];
  const answers = await Promise.race([
    checkQueue(target).then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), 3000).unref()),
  ]);
  const closed = answers
    ? Promise.all(all.map((q) => q.close())).then(() => true)
    : Promise.resolve(false);
  const clean = await Promise.race([
    closed,
    new Promise<boolean>((r) => setTimeout(() => r(false), CLOSE_DEADLINE_MS).unref()),
  ]);
  if (!clean) {
    log.warn(
      `queue ${target.display}: ${answers ? `stopping took over ${CLOSE_DEADLINE_MS / 1000} s` : 'Redis does not answer'}; stopping without it (the jobs in flight go to another worker after --lock-timeout)`,
    );
    stopping = true;
    await Promise.race([
      Promise.all([
        ...workers.map((w) => w.close(true).catch(() => {})),
        ...[...queues.values()].map((q) => q.disconnect().catch(() => {})),
      ]),
      new Promise((r) => setTimeout(r, 5000).unref()),
    ]);
  }
}

/**
 * N stages at once, shared by the worker's queues; a waiting task of a lower `rank` goes first
 * (in arrival order within a rank).
 */
function stageSlots(n: number) {
  let active = 0;
  const waiting: { rank: number; go: () => void }[] = [];
  const next = () => {
    while (active < n && waiting.length) {
      const i = waiting.reduce((best, w, k) => (w.rank < (waiting[best]?.rank ?? 0) ? k : best), 0);
      const [w] = waiting.splice(i, 1);
      active++;
      w?.go();
    }
  };
  return async <T>(rank: number, fn: () => Promise<T>): Promise<T> => {
    await new Promise<void>((go) => {
      waiting.push({ rank, go });
      next();
    });
    try {
      return await fn();
    } finally {
      active--;
      next();
    }
  };
}

/** How long a stopping worker waits for Redis to hear that it stops. */
const CLOSE_DEADLINE_MS = 60_000;
