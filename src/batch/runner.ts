/**
 * `v2v-load batch`: runs the imports of a manifest, N at a time. Each item is one import
 * (src/import/importer.ts) in its own run scope (its own cleanup stack, so a failed item removes
 * only what it made) and its own log file; the state file records every stage, so a killed batch
 * run again skips done items and redoes the others; an item that failed because libvirtd or the
 * node was unreachable (a restart) is tried once more; the report says per item what happened,
 * when, and why.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pLimit from 'p-limit';
import type { DependencyContainer } from 'tsyringe';
import { createRunContainer } from '../di/composition-root.js';
import { TOKENS } from '../di/tokens.js';
import { InterruptedError, NodeUnreachableError, V2vError } from '../errors.js';
import type { ImportEvent, Importer, ImportResult, ImportStage } from '../import/importer.js';
import { isLibvirtUnreachable } from '../import/libvirt-retry.js';
import { type Logger, StreamLogger } from '../log/logger.js';
import { RunScope } from '../run/run-scope.js';
import type { BatchItem, BatchManifest } from './manifest.js';
import { type BatchReport, buildReport } from './report.js';
import { BatchState, type ItemState } from './state.js';

/** Memory one import needs on the converting machine (the libguestfs appliance above all). */
export const MEMORY_PER_ITEM = 1.5 * 1024 ** 3;

/** N items at once by default: the cores, and the free memory at MEMORY_PER_ITEM each. */
export function defaultConcurrency(
  cores = os.availableParallelism(),
  freeBytes = os.freemem(),
): number {
  return Math.max(1, Math.min(cores, Math.floor(freeBytes / MEMORY_PER_ITEM)));
}

export type BatchEvent =
  | {
      type: 'item';
      key: string;
      status: 'running' | 'done' | 'failed' | 'skipped';
      message?: string;
    }
  | { type: 'item-stage'; key: string; stage: ImportStage; state: 'start' | 'end'; ms?: number }
  | { type: 'item-retry'; key: string; reason: string };

export interface BatchOptions {
  /** Items at once (default {@link defaultConcurrency}). */
  concurrency?: number | undefined;
  /** The state file (default: MANIFEST.state.json next to the manifest). */
  stateFile?: string | undefined;
  /** Directory of the per-item logs (default: STATE.logs/). */
  logDir?: string | undefined;
  /** The batch's scope: its signal interrupts every item (default: a new one). */
  scope?: RunScope | undefined;
  /** Retries of an item that failed because libvirtd or its node was unreachable (default 1). */
  retries?: number | undefined;
  onEvent?: ((e: BatchEvent) => void) | undefined;
}

/** The state file next to a manifest. */
export function defaultStateFile(manifestFile: string): string {
  return `${manifestFile.replace(/\.(json|ya?ml)$/i, '')}.state.json`;
}

function fileLogger(file: string): Logger {
  return new StreamLogger('debug', (line) =>
    fs.appendFileSync(file, `${new Date().toISOString()} ${line}`),
  );
}

function errorOf(e: unknown, stage: string | undefined): NonNullable<ItemState['error']> {
  if (e instanceof V2vError) {
    return { message: e.message, hint: e.hint, code: e.code, ...(stage ? { stage } : {}) };
  }
  return {
    message: e instanceof Error ? e.message : String(e),
    code: 'INTERNAL',
    ...(stage ? { stage } : {}),
  };
}

function retryable(e: unknown): boolean {
  return isLibvirtUnreachable(e) || (e instanceof NodeUnreachableError && e.retryable);
}

/** Runs a batch; resolves to its report (also when items failed). */
export async function runBatch(
  root: DependencyContainer,
  manifest: BatchManifest,
  options: BatchOptions = {},
): Promise<BatchReport> {
  const log = root.resolve<Logger>(TOKENS.Logger);
  const scope = options.scope ?? new RunScope(log);
  const stateFile = options.stateFile ?? defaultStateFile(manifest.file);
  const logDir = options.logDir ?? `${stateFile.replace(/\.json$/, '')}.logs`;
  fs.mkdirSync(logDir, { recursive: true });
  const concurrency = options.concurrency ?? defaultConcurrency();
  const state = await BatchState.open(stateFile, manifest.file);
  const emit = options.onEvent ?? (() => {});
  const started = Date.now();
  const limit = pLimit(concurrency);
  const skipped = new Set<string>();

  const runItem = async (item: BatchItem): Promise<void> => {
    const before = state.item(item.key);
    if (before?.status === 'done') {
      skipped.add(item.key);
      emit({
        type: 'item',
        key: item.key,
        status: 'skipped',
        message: `done in run ${before.run}`,
      });
      return;
    }
    if (scope.signal.aborted) return;
    const logFile = path.join(logDir, `${item.key}.log`);
    const itemLog = fileLogger(logFile);
    const st: ItemState = {
      key: item.key,
      status: 'running',
      attempts: before?.attempts ?? 0,
      run: state.run,
      started: Date.now(),
      stages: [],
      resumedAfterCrash: before?.status === 'running' ? true : undefined,
      log: logFile,
    };
    if (st.resumedAfterCrash) {
      itemLog.warn(
        `run ${state.run}: the previous run died while importing this item; its import cleans up first`,
      );
    }
    const tries = 1 + (options.retries ?? 1);
    for (let attempt = 1; attempt <= tries; attempt++) {
      st.attempts++;
      st.stages = [];
      st.error = undefined;
      await state.set(st);
      emit({ type: 'item', key: item.key, status: 'running' });
      itemLog.info(`${item.label}: import ${item.request.source.join(' ')} (attempt ${attempt})`);
      const itemScope = new RunScope(itemLog);
      const onAbort = () => itemScope.interrupt(scope.interruption?.signal ?? 'SIGTERM');
      scope.signal.addEventListener('abort', onAbort, { once: true });
      let current: StageSpan | undefined;
      try {
        const run = await createRunContainer(root, {}, { scope: itemScope });
        run.register(TOKENS.Logger, { useValue: itemLog });
        const importer = run.resolve<Importer>(TOKENS.Importer);
        const result: ImportResult = await importer.import(item.request, (e: ImportEvent) => {
          if (e.type === 'stage') {
            if (e.state === 'start') {
              current = { stage: e.stage, start: Date.now() };
              st.stages.push(current);
            } else if (current) {
              current.end = Date.now();
              current.ok = true;
            }
            void state.save();
            emit({ type: 'item-stage', key: item.key, stage: e.stage, state: e.state, ms: e.ms });
            itemLog.info(`${e.stage} ${e.state}${e.ms !== undefined ? ` (${e.ms} ms)` : ''}`);
          } else if (e.type === 'convert-stage' && e.state === 'end') {
            itemLog.info(`  convert: ${e.stage} (${e.ms} ms)`);
          } else if (e.type === 'warning') itemLog.warn(e.message);
        });
        st.status = 'done';
        st.result = {
          name: result.name,
          node: result.node,
          uri: result.uri,
          state: result.state,
          xmlPath: result.xmlPath,
          disks: result.disks.map((d) => ({ path: d.path, bytes: d.bytes })),
          booted: result.verify?.booted,
          bootSeconds: result.verify?.seconds,
        };
        itemLog.info(`done: ${result.name} ${result.state} on ${result.node}`);
      } catch (e) {
        const err = scope.interruption ?? e;
        if (current && current.end === undefined) {
          current.end = Date.now();
          current.ok = false;
        }
        st.status = 'failed';
        st.error = errorOf(err, current && current.ok === false ? current.stage : undefined);
        itemLog.error(`failed: ${st.error.message}`);
        if (!(err instanceof InterruptedError) && attempt < tries && retryable(e)) {
          await itemScope.cleanup.run();
          emit({ type: 'item-retry', key: item.key, reason: st.error.message });
          itemLog.warn('the node or libvirtd was unreachable: trying the item again');
          continue;
        }
      } finally {
        await itemScope.cleanup.run();
        scope.signal.removeEventListener('abort', onAbort);
      }
      break;
    }
    st.ended = Date.now();
    if (scope.signal.aborted && st.status === 'failed') {
      // Interrupted: cleaned up, to be run again.
      st.status = 'pending';
    }
    await state.set(st);
    emit({
      type: 'item',
      key: item.key,
      status: st.status === 'done' ? 'done' : 'failed',
      ...(st.error ? { message: st.error.message } : {}),
    });
  };

  await Promise.all(manifest.items.map((item) => limit(() => runItem(item))));
  await state.save();
  return buildReport(manifest, state.data, {
    started,
    ended: Date.now(),
    concurrency,
    run: state.run,
    skipped,
    stateFile,
  });
}

type StageSpan = ItemState['stages'][number];
