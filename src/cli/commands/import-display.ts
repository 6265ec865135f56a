/**
 * What `v2v-load import` shows while it works and at the end: stage lines on stderr and, on a
 * terminal, a progress bar (cli-progress) for each copy — the conversion's final copy and each
 * disk streamed to the node; with `--json`, one JSON line per event on stdout. The summary
 * names the domain, its disks, the XML, its state, the boot verdict and the time per stage.
 */
import cliProgress from 'cli-progress';
import type { ImportEvent, ImportResult } from '../../import/importer.js';
import type { CliContext } from '../context.js';

/** 1.2 GiB, 512 MiB, 4 KiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

const seconds = (ms: number | undefined) => `${((ms ?? 0) / 1000).toFixed(1)}s`;

/** The human summary of an import. */
export function formatImportResult(r: ImportResult): string {
  const lines: string[] = [];
  const verdict = r.verify
    ? r.verify.booted
      ? `, booted in ${r.verify.seconds} s ("${r.verify.matched}")`
      : `, DID NOT BOOT: ${r.verify.reason}`
    : '';
  lines.push(`Imported ${r.name} to ${r.uri} on ${r.node}: ${r.state}${verdict}`);
  lines.push(
    `  guest: ${r.guest.distro} ${r.guest.productName} (${r.source.hypervisor} → kvm), from ${r.source.path}`,
  );
  lines.push(`  uuid: ${r.uuid}`);
  for (const d of r.disks) {
    lines.push(
      `  disk ${d.dev}: ${d.path} (${d.format}, ${formatBytes(d.bytes)}${d.sha256 ? `, sha256 ${d.sha256.slice(0, 16)}… checked on the node` : ''})`,
    );
  }
  lines.push(`  domain XML: ${r.xmlPath}`);
  lines.push(`  console log: ${r.consoleLog}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  const total = Object.values(r.stages).reduce((a, b) => a + (b ?? 0), 0);
  const parts = Object.entries(r.stages).map(([s, ms]) => {
    if (s !== 'convert') return `${s} ${seconds(ms)}`;
    const inner = Object.entries(r.convertStages)
      .map(([c, cms]) => `${c} ${seconds(cms)}`)
      .join(', ');
    return `convert ${seconds(ms)} (${inner})`;
  });
  lines.push(`  stages: ${parts.join(', ')}; total ${seconds(total)}`);
  return `${lines.join('\n')}\n`;
}

/** An event sink for an import: stage lines + bars on a terminal, or JSON lines. */
export function importEventPrinter(
  ctx: Pick<CliContext, 'out' | 'log'>,
  json: boolean,
  stderr: NodeJS.WriteStream = process.stderr,
): { onEvent: (e: ImportEvent) => void; end: () => void } {
  if (json) {
    return {
      onEvent: (e) => {
        const { type, ...rest } = e;
        ctx.out(`${JSON.stringify({ event: type, ...rest })}\n`);
      },
      end: () => {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  let barKey = '';
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
    barKey = '';
  };
  return {
    onEvent: (e) => {
      if (e.type === 'progress') {
        if (!stderr.isTTY) return;
        const key = `${e.copy}:${e.disk}`;
        if (key !== barKey) {
          stopBar();
          barKey = key;
          bar = new cliProgress.SingleBar(
            {
              stream: stderr,
              format: `  ${e.copy === 'place' ? 'copy to node' : 'write'} {disk} [{bar}] {percentage}% | {duration_formatted}`,
              hideCursor: true,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(100, 0, { disk: e.disk });
        }
        bar?.update(e.percent);
        return;
      }
      stopBar();
      if (e.type === 'stage') {
        if (e.state === 'start') ctx.log.info(`${e.stage} ...`);
        else ctx.log.info(`${e.stage} done (${seconds(e.ms)})`);
      } else if (e.type === 'convert-stage') {
        if (e.state === 'end') ctx.log.info(`  convert: ${e.stage} (${seconds(e.ms)})`);
      } else if (e.type === 'warning') {
        ctx.log.warn(e.message);
      }
    },
    end: stopBar,
  };
}
