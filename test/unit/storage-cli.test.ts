/** `v2v-load image`: help, usage errors and the progress bar, without touching images. */
import { describe, expect, it } from 'vitest';
import { progressBar, progressReporter } from '../../src/cli/commands/image/index.js';
import type { CliContext } from '../../src/cli/context.js';
import { cli } from '../harness/cli.js';

describe('v2v-load image', () => {
  it('lists its subcommands and node options', async () => {
    const r = await cli('image', '--help');
    expect(r.status).toBe(0);
    for (const s of ['image info', 'image copy', 'image cow', 'image find'])
      expect(r.stdout).toContain(s);
    const c = await cli('image', 'copy', '--help');
    for (const o of [
      '--host',
      '--identity',
      '--format',
      '--source-format',
      '--allow-dir',
      '--json',
    ]) {
      expect(c.stdout).toContain(o);
    }
  });

  it('refuses relative paths and bad formats as usage errors', async () => {
    const r = await cli('image', 'info', 'disk.qcow2');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("PATH 'disk.qcow2': give an absolute path on the node");
    const f = await cli('image', 'copy', '/a', '/b', '--format', 'vmdk');
    expect(f.status).toBe(2);
    expect(f.stderr).toMatch(/Invalid values:[\s\S]*format/);
    const n = await cli('image', 'find', 'x-v1');
    expect(n.status).toBe(2);
    expect(n.stderr).toContain('datastore');
  });

  it('draws a progress bar', () => {
    expect(progressBar(0, 10)).toBe('[----------]   0.00%');
    expect(progressBar(45.5, 10)).toBe('[#####-----]  45.50%');
    expect(progressBar(100, 10)).toBe('[##########] 100.00%');
    expect(progressBar(150, 4)).toBe('[####] 100.00%');
  });

  it('progress: a bar on a TTY stderr, JSON lines with --json, nothing on a pipe', () => {
    let out = '';
    const ctx = { out: (t: string) => (out += t) } as unknown as CliContext;
    let err = '';
    const tty = { isTTY: true, write: (t: string) => (err += t) } as unknown as NodeJS.WriteStream;
    const bar = progressReporter(ctx, false, tty);
    bar.onProgress({ percent: 50 });
    bar.onProgress({ percent: 100 });
    bar.end();
    expect(err).toBe(`\r${progressBar(50, 30)}\r${progressBar(100, 30)}\n`);
    expect(out).toBe('');
    const json = progressReporter(ctx, true, tty);
    json.onProgress({ percent: 12.34 });
    expect(out).toBe('{"event":"progress","percent":12.34}\n');
    err = '';
    const pipe = progressReporter(ctx, false, { ...tty, isTTY: false } as NodeJS.WriteStream);
    pipe.onProgress({ percent: 1 });
    pipe.end();
    expect(err).toBe('');
  });
});
