/**
 * The batch report: per item the result, the reason of a failure, the stage times and the
 * sizes; as JSON, as a table for the terminal, and as one self-contained HTML page (no script,
 * no network) whose stage timeline shows at a glance what ran when and what failed.
 */
import { IMPORT_STAGES, type ImportStage } from '../import/importer.js';
import type { BatchManifest } from './manifest.js';
import type { BatchStateData, ItemState } from './state.js';

export interface ItemReport {
  key: string;
  label: string;
  source: string;
  node: string;
  /** `running`: queue mode, a stage of the item is being run now. */
  status: 'done' | 'failed' | 'pending' | 'running';
  /** Done in an earlier run of the batch, skipped in this one. */
  skipped: boolean;
  /** The item ran into a half-done import of a killed run (cleaned up, then redone). */
  resumedAfterCrash: boolean;
  attempts: number;
  run: number | undefined;
  name?: string | undefined;
  state?: string | undefined;
  booted?: boolean | undefined;
  /** Milliseconds per stage (the last attempt). */
  stageMs: Partial<Record<ImportStage, number>>;
  /** The stage spans of the last attempt, in epoch milliseconds. */
  timeline: ItemState['stages'];
  failedStage?: string | undefined;
  error?: string | undefined;
  hint?: string | undefined;
  disks: { path: string; bytes: number }[];
  bytes: number;
  seconds: number | undefined;
  log: string | undefined;
  /** Queue mode: the worker of the latest stage. */
  worker?: string | undefined;
  /** A running item: the stage it is in. */
  stage?: string | undefined;
}

export interface BatchReport {
  manifest: string;
  stateFile: string;
  run: number;
  started: string;
  ended: string;
  seconds: number;
  concurrency: number;
  counts: { done: number; failed: number; pending: number; skipped: number; running?: number };
  items: ItemReport[];
  /** Queue mode: the Redis (without its password), the batch's name, the workers seen. */
  queue?: { url: string; batch: string; workers: string[] } | undefined;
}

export function buildReport(
  manifest: BatchManifest,
  state: BatchStateData,
  run: {
    started: number;
    ended: number;
    concurrency: number;
    run: number;
    skipped: ReadonlySet<string>;
    stateFile: string;
    queue?: BatchReport['queue'];
  },
): BatchReport {
  const items: ItemReport[] = manifest.items.map((it) => {
    const s = state.items[it.key];
    const stageMs: Partial<Record<ImportStage, number>> = {};
    for (const sp of s?.stages ?? []) {
      if (sp.end !== undefined) stageMs[sp.stage] = sp.end - sp.start;
    }
    const disks = s?.result?.disks ?? [];
    const ssh = it.request.target?.ssh;
    return {
      key: it.key,
      label: it.label,
      source: it.request.source.join(' '),
      node: s?.result?.node ?? (ssh ? `ssh://${ssh.user}@${ssh.host}:${ssh.port}` : 'local'),
      status:
        s?.status === 'done' || s?.status === 'failed' || s?.status === 'running'
          ? s.status
          : 'pending',
      skipped: run.skipped.has(it.key),
      resumedAfterCrash: !!s?.resumedAfterCrash,
      attempts: s?.attempts ?? 0,
      run: s?.run,
      name: s?.result?.name,
      state: s?.result?.state,
      booted: s?.result?.booted,
      stageMs,
      timeline: s?.stages ?? [],
      failedStage: s?.error?.stage,
      error: s?.error?.message,
      hint: s?.error?.hint,
      disks,
      bytes: disks.reduce((a, d) => a + d.bytes, 0),
      seconds:
        s?.started !== undefined && s.ended !== undefined
          ? Math.round((s.ended - s.started) / 100) / 10
          : undefined,
      log: s?.log,
      ...(s?.worker ? { worker: s.worker } : {}),
      ...(s?.status === 'running' && s.stages.at(-1)?.end === undefined
        ? { stage: s.stages.at(-1)?.stage }
        : {}),
    };
  });
  const count = (st: ItemReport['status']) => items.filter((i) => i.status === st).length;
  return {
    manifest: manifest.file,
    stateFile: run.stateFile,
    run: run.run,
    started: new Date(run.started).toISOString(),
    ended: new Date(run.ended).toISOString(),
    seconds: Math.round((run.ended - run.started) / 100) / 10,
    concurrency: run.concurrency,
    counts: {
      done: count('done'),
      failed: count('failed'),
      pending: count('pending'),
      skipped: run.skipped.size,
      ...(run.queue ? { running: count('running') } : {}),
    },
    items,
    ...(run.queue ? { queue: run.queue } : {}),
  };
}

const SHORT: Record<ImportStage, string> = {
  prepare: 'prep',
  convert: 'convert',
  place: 'place',
  define: 'define',
  start: 'start',
  'verify-boot': 'boot',
};

function mib(bytes: number): string {
  return bytes ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : '-';
}

/** The report as a table for the terminal. */
export function formatReportTable(r: BatchReport): string {
  const workers = r.items.some((i) => i.worker);
  const head = [
    'ITEM',
    'STATUS',
    'NODE',
    ...(workers ? ['WORKER'] : []),
    ...IMPORT_STAGES.map((s) => SHORT[s]),
    'SIZE',
    'TIME',
    'REASON',
  ];
  const rows = r.items.map((i) => [
    i.key,
    i.skipped ? 'done (earlier)' : i.stage ? `${i.status} (${i.stage})` : i.status,
    i.node,
    ...(workers ? [i.worker ?? '-'] : []),
    ...IMPORT_STAGES.map((s) => {
      const ms = i.stageMs[s];
      if (i.failedStage === s) return 'FAILED';
      return ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`;
    }),
    mib(i.bytes),
    i.seconds === undefined ? '-' : `${i.seconds}s`,
    i.error ? (i.error.split('\n')[0]?.slice(0, 100) ?? '') : '',
  ]);
  const widths = head.map((h, c) =>
    Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((x, c) => (c === cells.length - 1 ? x : x.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  const where = r.queue
    ? `${r.seconds} s on ${r.queue.workers.length} worker${r.queue.workers.length === 1 ? '' : 's'} (batch ${r.queue.batch} on ${r.queue.url})`
    : `${r.seconds} s at concurrency ${r.concurrency} (run ${r.run}, state ${r.stateFile})`;
  out.push(
    '',
    `${r.counts.done} done, ${r.counts.failed} failed, ` +
      `${r.counts.running ? `${r.counts.running} running, ` : ''}${r.counts.pending} pending` +
      `${r.counts.skipped ? ` (${r.counts.skipped} done in an earlier run)` : ''}; ${where}`,
  );
  return `${out.join('\n')}\n`;
}

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": '#39' }[c]};`,
  );

/** Colours of the stages in the timeline (a failed stage is red whatever its kind). */
export const STAGE_COLOURS: Record<ImportStage, string> = {
  prepare: '#9aa5b1',
  convert: '#3b82f6',
  place: '#8b5cf6',
  define: '#14b8a6',
  start: '#22c55e',
  'verify-boot': '#15803d',
};
export const FAILED_COLOUR = '#dc2626';

/** The report as one self-contained HTML page with a stage timeline per item. */
export function renderReportHtml(r: BatchReport): string {
  const spans = r.items.flatMap((i) => i.timeline);
  const t0 = Math.min(...spans.map((s) => s.start), Date.parse(r.started));
  const t1 = Math.max(...spans.map((s) => s.end ?? s.start), Date.parse(r.ended), t0 + 1);
  const pct = (t: number) => (((t - t0) / (t1 - t0)) * 100).toFixed(3);
  const total = (t1 - t0) / 1000;
  const ticks = Array.from({ length: 6 }, (_, k) => {
    const x = (k / 5) * 100;
    const shift = k === 0 ? '0' : k === 5 ? '-100%' : '-50%';
    return `<span class="tick" style="left:${x}%;transform:translateX(${shift})">${((total * k) / 5).toFixed(0)}&nbsp;s</span>`;
  }).join('');
  const rows = r.items
    .map((i) => {
      const bars = i.timeline
        .map((s) => {
          const end = s.end ?? s.start;
          const failed = s.ok === false;
          const colour = failed ? FAILED_COLOUR : STAGE_COLOURS[s.stage];
          const width = Math.max(Number(pct(end)) - Number(pct(s.start)), 0.4);
          const title = `${s.stage}: ${((end - s.start) / 1000).toFixed(1)} s${failed ? ' — FAILED' : ''}`;
          return `<div class="bar${failed ? ' failed' : ''}" style="left:${pct(s.start)}%;width:${width.toFixed(3)}%;background:${colour}" title="${esc(title)}"></div>`;
        })
        .join('');
      const status = i.skipped ? 'done (earlier run)' : i.status;
      const detail = i.error
        ? `<div class="reason">${esc(i.failedStage ? `${i.failedStage}: ` : '')}${esc(i.error.split('\n')[0] ?? '')}</div>`
        : i.name
          ? `<div class="detail">${esc(i.name)} · ${esc(i.state ?? '')}${i.booted ? ' · booted' : ''} · ${esc(mib(i.bytes))}</div>`
          : '';
      return `<tr class="${esc(i.status)}">
  <td class="item"><b>${esc(i.key)}</b><div class="src">${esc(i.source)}</div></td>
  <td class="status"><span class="pill ${esc(i.status)}">${esc(status)}</span>${i.attempts > 1 ? `<div class="detail">${i.attempts} attempts</div>` : ''}${i.resumedAfterCrash ? '<div class="detail">after a crash</div>' : ''}</td>
  <td class="node">${esc(i.node)}${i.worker ? `<div class="detail">worker ${esc(i.worker)}</div>` : ''}</td>
  <td class="timeline"><div class="track">${bars}</div>${detail}</td>
</tr>`;
    })
    .join('\n');
  const legend = [...Object.entries(STAGE_COLOURS), ['failed', FAILED_COLOUR] as const]
    .map(([s, c]) => `<span class="key"><i style="background:${c}"></i>${esc(s)}</span>`)
    .join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>v2v-load batch: ${esc(r.manifest)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2933;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.sum{margin:0 0 16px;color:#52606d}
.sum b.done{color:#15803d}.sum b.failed{color:${FAILED_COLOUR}}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#7b8794}
td.item{width:16%}td.status{width:10%}td.node{width:14%;font-size:12px}
.src{font-size:11px;color:#7b8794;word-break:break-all}
.pill{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;color:#fff;background:#7b8794}
.pill.done{background:#15803d}.pill.failed{background:${FAILED_COLOUR}}
.track{position:relative;height:22px;background:#f5f7fa;border-radius:3px}
.bar{position:absolute;top:2px;height:18px;border-radius:2px}
.bar.failed{outline:2px solid #7f1d1d}
.axis{position:relative;height:18px;font-size:11px;color:#7b8794}
.tick{position:absolute;white-space:nowrap}
.reason{color:${FAILED_COLOUR};font-size:12px;margin-top:4px}
.detail{color:#52606d;font-size:12px;margin-top:4px}
.legend{margin:12px 0}.key{margin-right:14px;font-size:12px}.key i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;border-radius:2px}
</style></head><body>
<h1>v2v-load batch report</h1>
<p class="sum">${esc(r.manifest)} · run ${r.run} · ${r.started} · ${r.seconds} s at concurrency ${r.concurrency}<br>
<b class="done">${r.counts.done} done</b> · <b class="failed">${r.counts.failed} failed</b> · ${r.counts.pending} pending${r.counts.skipped ? ` · ${r.counts.skipped} done in an earlier run` : ''}</p>
<div class="legend">${legend}</div>
<table>
<thead><tr><th>Item</th><th>Result</th><th>Node</th><th>Stage timeline<div class="axis">${ticks}</div></th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
