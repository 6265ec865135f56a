/**
 * The batch's side of the queue: enqueue a manifest (one BullMQ flow per item: the item job and
 * its first stage as its child), read a batch back as the embedded batch's state (so the same
 * report and renderers serve both), and follow it until every item is done or failed.
 */
import { FlowProducer, Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { throwIfAborted } from '../../run/run-scope.js';
import type { BatchManifest } from '../manifest.js';
import { type BatchReport, buildReport } from '../report.js';
import type { BatchStateData, ItemState, StageSpan } from '../state.js';
import { QueueError, type QueueTarget, redisClient, redisOptions } from './connection.js';
import {
  type BatchMeta,
  ITEMS_QUEUE,
  type ItemJobData,
  itemJobId,
  metaKey,
  QUEUE_PREFIX,
  type QueueStage,
  RETRY_DELAY_MS,
  STAGE_ATTEMPTS,
  STAGE_PARTS,
  type StageJobData,
  type StageProgress,
  type StageResult,
  stageJobId,
  stageQueue,
  stagesOf,
} from './model.js';

/** An open connection to the queue's Redis, for the batch commands. */
export class QueueClient {
  private readonly redis: Redis;
  private readonly queues = new Map<string, Queue>();

  constructor(readonly target: QueueTarget) {
    this.redis = redisClient(target);
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: redisOptions(this.target), prefix: QUEUE_PREFIX });
      q.on('error', () => {});
      this.queues.set(name, q);
    }
    return q;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.redis.disconnect();
  }

  /**
   * Enqueues every item of `manifest` as batch `name`; refused when a batch of that name is
   * there (unless an enqueue of the same manifest was cut off: then it is finished).
   */
  async enqueue(manifest: BatchManifest, name: string): Promise<BatchMeta> {
    const meta: BatchMeta = {
      name,
      manifest: manifest.file,
      created: new Date().toISOString(),
      complete: false,
      items: manifest.items,
    };
    const set = await this.redis.set(metaKey(name), JSON.stringify(meta), 'NX');
    let use = meta;
    if (set !== 'OK') {
      const other = await this.meta(name);
      if (other.complete || other.manifest !== manifest.file) {
        throw new QueueError(
          `batch ${name} is on ${this.target.display} already (enqueued ${other.created} from ${other.manifest})`,
          {
            hint: `give another --name, or see it with: v2v-load batch status ${name} --queue URL`,
          },
        );
      }
      use = other; // an enqueue cut off: the job ids make adding again harmless
    }
    const flow = new FlowProducer({ connection: redisOptions(this.target), prefix: QUEUE_PREFIX });
    flow.on('error', () => {});
    try {
      for (const item of use.items) {
        const data: ItemJobData = {
          batch: name,
          key: item.key,
          request: item.request,
          queueLabel: item.queueLabel,
          queues: { convert: stageQueue(item.queueLabel) },
        };
        await flow.add({
          name: 'item',
          queueName: ITEMS_QUEUE,
          data,
          opts: {
            jobId: itemJobId(name, item.key),
            attempts: 5,
            backoff: { type: 'exponential', delay: 1000 },
          },
          children: [
            {
              name: 'convert',
              queueName: stageQueue(item.queueLabel),
              data: {
                batch: name,
                key: item.key,
                stage: 'convert',
                request: item.request,
              } satisfies StageJobData,
              opts: {
                jobId: stageJobId(name, item.key, 'convert'),
                attempts: STAGE_ATTEMPTS,
                backoff: { type: 'exponential', delay: RETRY_DELAY_MS },
                ignoreDependencyOnFailure: true,
              },
            },
          ],
        });
      }
    } finally {
      await flow.close();
    }
    use = { ...use, complete: true };
    await this.redis.set(metaKey(name), JSON.stringify(use));
    return use;
  }

  /** The batch's key; a clear error when there is no such batch. */
  async meta(name: string): Promise<BatchMeta> {
    const text = await this.redis.get(metaKey(name));
    if (!text) {
      const names = (await this.redis.keys(metaKey('*'))).map((k) => k.slice(metaKey('').length));
      throw new QueueError(`no batch named ${name} on ${this.target.display}`, {
        hint: names.length
          ? `batches there: ${names.sort().slice(0, 20).join(', ')}`
          : 'no batch is there: enqueue one with v2v-load batch MANIFEST --queue URL',
      });
    }
    return JSON.parse(text) as BatchMeta;
  }

  /** The batch read back as a state (as the embedded batch keeps it) and its report. */
  async report(name: string): Promise<{ report: BatchReport; finished: boolean }> {
    const meta = await this.meta(name);
    const items: Record<string, ItemState> = {};
    const workers = new Set<string>();
    let last = Date.parse(meta.created);
    for (const item of meta.items) {
      const s = await this.itemState(meta, item.key);
      items[item.key] = s;
      if (s.worker) workers.add(s.worker);
      last = Math.max(last, s.ended ?? 0, ...s.stages.map((x) => x.end ?? x.start));
    }
    const finished = Object.values(items).every(
      (s) => s.status === 'done' || s.status === 'failed',
    );
    const state: BatchStateData = {
      version: 1,
      manifest: meta.manifest,
      owner: { host: '', pid: 0, since: meta.created },
      runs: 1,
      items,
    };
    const report = buildReport({ file: meta.manifest, items: meta.items }, state, {
      started: Date.parse(meta.created),
      ended: finished ? last : Date.now(),
      concurrency: workers.size,
      run: 1,
      skipped: new Set(),
      stateFile: `${this.target.display} batch ${name}`,
      queue: { url: this.target.display, batch: name, workers: [...workers].sort() },
    });
    return { report, finished };
  }

  private async itemState(meta: BatchMeta, key: string): Promise<ItemState> {
    const st: ItemState = { key, status: 'pending', attempts: 0, run: 1, stages: [] };
    const itemJob = await Job.fromId<ItemJobData>(
      this.queue(ITEMS_QUEUE),
      itemJobId(meta.name, key),
    );
    if (!itemJob) return st;
    const itemState = await itemJob.getState();
    let running = false;
    let retries = 0;
    for (const stage of stagesOf(itemJob.data.request)) {
      const q = itemJob.data.queues?.[stage];
      if (!q) break;
      const job = await Job.fromId<StageJobData, StageResult>(
        this.queue(q),
        stageJobId(meta.name, key, stage),
      );
      if (!job) break;
      const state = await job.getState();
      retries += Math.max(0, (job.attemptsStarted || job.attemptsMade || 1) - 1);
      if (state === 'completed' && job.returnvalue) {
        const r = job.returnvalue;
        st.stages.push(...r.spans);
        st.worker = r.worker;
        st.started ??= r.started;
        if (r.result) st.result = r.result;
      } else if (state === 'active') {
        const p = job.progress as Partial<StageProgress> | undefined;
        running = true;
        if (p?.worker) st.worker = p.worker;
        const start = p?.started ?? job.processedOn ?? Date.now();
        st.started ??= start;
        st.stages.push({ stage: p?.part ?? (STAGE_PARTS[stage][0] as StageSpan['stage']), start });
      } else if (state === 'failed') {
        const p = job.progress as Partial<StageProgress> | undefined;
        if (p?.worker) st.worker = p.worker;
        const error = job.data.error ?? { message: job.failedReason, code: 'FAILED' };
        const part = (error.stage ?? STAGE_PARTS[stage][0]) as StageSpan['stage'];
        const start = job.processedOn ?? Date.now();
        st.started ??= start;
        st.stages.push({ stage: part, start, end: job.finishedOn ?? start, ok: false });
        st.error = error;
      }
    }
    // As the embedded batch counts them: 1, and one more for each stage tried again.
    st.attempts = st.stages.length ? 1 + retries : 0;
    if (itemState === 'completed') {
      st.status = 'done';
      st.ended = itemJob.finishedOn;
    } else if (itemState === 'failed') {
      st.status = 'failed';
      st.ended = itemJob.finishedOn;
      st.error ??= { message: itemJob.failedReason, code: 'FAILED' };
    } else if (running || st.stages.length) {
      st.status = 'running';
    }
    return st;
  }

  /**
   * Per item: when its first stage started, when the item ended, and the milliseconds its
   * stage jobs ran (the rest of the item's time went to the queue: hand-over between stages).
   */
  async timings(
    name: string,
  ): Promise<{ key: string; start: number; end: number; inStages: number }[]> {
    const meta = await this.meta(name);
    const out: { key: string; start: number; end: number; inStages: number }[] = [];
    for (const item of meta.items) {
      const job = await Job.fromId<ItemJobData>(this.queue(ITEMS_QUEUE), itemJobId(name, item.key));
      if (!job?.finishedOn) continue;
      let start = Number.POSITIVE_INFINITY;
      let inStages = 0;
      for (const [stage, q] of Object.entries(job.data.queues ?? {})) {
        const sj = await Job.fromId<StageJobData, StageResult>(
          this.queue(q),
          stageJobId(name, item.key, stage as QueueStage),
        );
        const r = sj?.returnvalue;
        if (!r) continue;
        start = Math.min(start, r.started);
        inStages += r.ended - r.started;
      }
      if (Number.isFinite(start)) out.push({ key: item.key, start, end: job.finishedOn, inStages });
    }
    return out;
  }

  /**
   * Polls the batch until every item is done or failed; `onChange` hears each item whose
   * status or stage changed. Resolves to the final report.
   */
  async follow(
    name: string,
    onChange: (item: BatchReport['items'][number]) => void,
    signal?: AbortSignal,
    everyMs = 1000,
  ): Promise<BatchReport> {
    const seen = new Map<string, string>();
    for (;;) {
      throwIfAborted(signal);
      const { report, finished } = await this.report(name);
      for (const i of report.items) {
        const sig = `${i.status}/${i.stage ?? ''}/${i.attempts}`;
        if (seen.get(i.key) !== sig) {
          seen.set(i.key, sig);
          onChange(i);
        }
      }
      if (finished) return report;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
