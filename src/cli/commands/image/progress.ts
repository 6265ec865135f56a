/** Progress of a long image operation: a bar on a terminal, JSON lines with --json. */
import type { ProgressEvent } from '../../../storage/qemu-img.js';
import type { CliContext } from '../../context.js';

/**
 * A progress reporter: JSON lines on stdout with --json, a bar on stderr when it is a
 * terminal, nothing otherwise.
 */
export function progressReporter(
  ctx: Pick<CliContext, 'out'>,
  json: boolean,
  stderr: NodeJS.WriteStream = process.stderr,
): { onProgress: (e: ProgressEvent) => void; end: () => void } {
  if (json) {
    return {
      onProgress: (e) => ctx.out(`${JSON.stringify({ event: 'progress', percent: e.percent })}\n`),
      end: () => {},
    };
  }
  if (!stderr.isTTY) return { onProgress: () => {}, end: () => {} };
  let drawn = false;
  return {
    onProgress: (e) => {
      stderr.write(`\r${progressBar(e.percent, 30)}`);
      drawn = true;
    },
    end: () => {
      if (drawn) stderr.write('\n');
    },
  };
}

/** `[#######-------]  45.00%` */
export function progressBar(percent: number, width: number): string {
  const p = Math.min(100, Math.max(0, percent));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${p.toFixed(2).padStart(6)}%`;
}
