/**
 * The library calls of import and batch, for migration scripts:
 *
 * ```ts
 * import { batchImport, importGuest } from 'v2v-load';
 * const report = await batchImport('wave1.yaml', { concurrency: 2 });
 * for (const i of report.items) if (i.status === 'failed') console.log(i.key, i.error);
 * const r = await importGuest({ source: ['/exports/web/web.vmx'], verifyBoot: true });
 * ```
 *
 * Each call makes its own composition root (so its own SSH connection pool, closed at the end)
 * unless one is given.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import { createRootContainer, createRunContainer } from '../di/composition-root.js';
import { TOKENS } from '../di/tokens.js';
import type { ImportEvent, Importer, ImportRequest, ImportResult } from '../import/importer.js';
import { type Logger, StreamLogger } from '../log/logger.js';
import type { NodeFactory } from '../node/node-factory.js';
import { RunScope } from '../run/run-scope.js';
import {
  type BatchManifest,
  loadManifest,
  type ManifestInput,
  resolveManifest,
} from './manifest.js';
import type { BatchReport } from './report.js';
import { type BatchOptions, runBatch } from './runner.js';

export interface LibraryOptions {
  /** Diagnostics (default: warnings and errors on stderr). */
  logger?: Logger | undefined;
  /** A composition root of your own (default: a new one, closed at the end). */
  root?: DependencyContainer | undefined;
}

async function withRoot<T>(
  opts: LibraryOptions,
  fn: (root: DependencyContainer, log: Logger) => Promise<T>,
): Promise<T> {
  const log = opts.logger ?? new StreamLogger('warn');
  const root = opts.root ?? createRootContainer(log);
  try {
    return await fn(root, log);
  } finally {
    if (!opts.root) await root.resolve<NodeFactory>(TOKENS.NodeFactory).closeAll();
  }
}

/**
 * Runs a batch: a manifest file (JSON/YAML), a manifest object (paths relative to
 * `baseDir`, default the working directory), or one already resolved.
 */
export function batchImport(
  manifest: string | ManifestInput | BatchManifest,
  options: BatchOptions & LibraryOptions & { baseDir?: string } = {},
): Promise<BatchReport> {
  return withRoot(options, async (root) => {
    const m =
      typeof manifest === 'string'
        ? await loadManifest(path.resolve(manifest))
        : 'file' in manifest
          ? manifest
          : resolveManifest(manifest, '<inline manifest>', path.resolve(options.baseDir ?? '.'));
    if (!options.stateFile && typeof manifest !== 'string' && !('file' in manifest)) {
      throw new TypeError('batchImport: give options.stateFile for an inline manifest');
    }
    return runBatch(root, m, options);
  });
}

/** One import (what `v2v-load import` does); cleans up after itself on failure. */
export function importGuest(
  request: ImportRequest,
  options: LibraryOptions & {
    onEvent?: (e: ImportEvent) => void;
    signal?: AbortSignal;
  } = {},
): Promise<ImportResult> {
  return withRoot(options, async (root, log) => {
    const scope = new RunScope(log);
    const onAbort = () => scope.interrupt('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const run = await createRunContainer(root, {}, { scope });
      return await run.resolve<Importer>(TOKENS.Importer).import(request, options.onEvent);
    } finally {
      await scope.cleanup.run();
      options.signal?.removeEventListener('abort', onAbort);
    }
  });
}

export type { BatchItem, BatchManifest, ManifestInput } from './manifest.js';
export { loadManifest, ManifestError, resolveManifest } from './manifest.js';
export { QueueClient } from './queue/client.js';
export { checkQueue, parseQueueUrl, type QueueTarget } from './queue/connection.js';
export { runQueueWorker, type WorkerEvent, type WorkerOptions } from './queue/worker.js';
export type { BatchReport, ItemReport } from './report.js';
export { formatReportTable, renderReportHtml } from './report.js';
export type { BatchEvent, BatchOptions } from './runner.js';
export { defaultConcurrency, runBatch } from './runner.js';
