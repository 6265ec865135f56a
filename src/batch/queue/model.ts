/**
 * How a batch lives on the queue (BullMQ over Redis). Every name of a queue, a job and a key is
 * made here.
 *
 * - The batch: one key `v2v-load:batch:NAME` (its manifest file, creation time, resolved items),
 *   created only if absent (a second enqueue of the same name is refused).
 * - Each item: a job `item` in the queue `items` (id `BATCH/ITEM`), the parent of its stage jobs.
 *   It runs no import itself: each time it is processed it adds the next stage as its child and
 *   waits for it (BullMQ's waiting-children), so a stage's result is kept in its parent and a
 *   retry of the item resumes at the stage that failed.
 * - The stages (ids `BATCH/ITEM/STAGE`): `convert` in the queue `stages` (or `stages-LABEL` for
 *   an item asking for a label), where any worker (with that label) takes it; the later stages
 *   in the converting host's queue `host-HOST`, since the conversion is on that host's disk.
 */
import type { ImportRequest, ImportStage } from '../../import/importer.js';
import type { BatchItem } from '../manifest.js';
import type { ItemState, StageSpan } from '../state.js';

/** BullMQ's key prefix for every queue of v2v-load. */
export const QUEUE_PREFIX = 'v2v-load';
export const ITEMS_QUEUE = 'items';

/** The stages of an item on the queue; `start` is define and start. */
export const QUEUE_STAGES = ['convert', 'place', 'start', 'verify-boot'] as const;
export type QueueStage = (typeof QUEUE_STAGES)[number];

/** The import stages (of src/import/importer.ts) each queue stage runs and reports. */
export const STAGE_PARTS: Record<QueueStage, readonly ImportStage[]> = {
  convert: ['prepare', 'convert'],
  place: ['place'],
  start: ['define', 'start'],
  'verify-boot': ['verify-boot'],
};

/** The stages an item goes through. */
export function stagesOf(req: ImportRequest): QueueStage[] {
  return QUEUE_STAGES.filter((s) => s !== 'verify-boot' || req.verifyBoot);
}

/** Tries of a stage (the first and the retries of a retryable failure). */
export const STAGE_ATTEMPTS = 4;
/** The first pause before a retry; it doubles each time. */
export const RETRY_DELAY_MS = 5000;

/** Batch names: what an item name may be. */
export const BATCH_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

export const metaKey = (batch: string) => `${QUEUE_PREFIX}:batch:${batch}`;
export const itemJobId = (batch: string, key: string) => `${batch}/${key}`;
export const stageJobId = (batch: string, key: string, stage: QueueStage) =>
  `${batch}/${key}/${stage}`;
/** The owner of an item's import record across its stage runs. */
export const recordOwner = (batch: string, key: string) => `queue:${batch}/${key}`;

/** Queue names hold no `:`; a label or a host name is kept to these characters. */
const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
export const stageQueue = (label?: string) => (label ? `stages-${safe(label)}` : 'stages');
export const hostQueue = (host: string) => `host-${safe(host)}`;

/** The batch key's value. */
export interface BatchMeta {
  name: string;
  /** The manifest file it was made from. */
  manifest: string;
  created: string;
  /** Every item was enqueued (an enqueue cut off is finished by the next one). */
  complete: boolean;
  items: BatchItem[];
}

export interface ItemJobData {
  batch: string;
  key: string;
  request: ImportRequest;
  queueLabel?: string | undefined;
  /** The queue each stage job was added to. */
  queues: Partial<Record<QueueStage, string>>;
}

export interface StageError {
  message: string;
  hint?: string | undefined;
  code: string;
  stage?: string;
}

export interface StageJobData {
  batch: string;
  key: string;
  stage: QueueStage;
  request: ImportRequest;
  /** The last attempt's error. */
  error?: StageError | undefined;
}

/** A running stage job's progress: who runs it, since when, in which import stage. */
export interface StageProgress {
  worker: string;
  host: string;
  started: number;
  part?: ImportStage | undefined;
}

/** A stage job's return value (kept by its parent item). */
export interface StageResult {
  stage: QueueStage;
  worker: string;
  host: string;
  started: number;
  ended: number;
  spans: StageSpan[];
  result?: ItemState['result'];
}
