/**
 * A missing golden file fails the suite as scripts/test.sh (and so CI) runs it, instead of being
 * written; a plain local `npx vitest run` still writes it, for review.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Each case starts vitest itself: seconds, more on a busy machine.
vi.setConfig({ testTimeout: 120_000 });

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const VITEST = path.join(ROOT, 'node_modules/.bin/vitest');

/** The arguments of each `npx vitest ...` line of scripts/test.sh. */
async function testShVitestArgs(): Promise<string[][]> {
  const script = await fs.readFile(path.join(ROOT, 'scripts/test.sh'), 'utf8');
  return script
    .split('\n')
    .filter((l) => /^\s*npx vitest\b/.test(l))
    .map((l) => l.trim().split(/\s+/).slice(2));
}

describe('golden files under scripts/test.sh', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-golden-missing-'));
    await fs.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    await fs.writeFile(
      path.join(dir, 'probe.test.ts'),
      [
        "import { expect, it } from 'vitest';",
        "it('matches its golden file', async () => {",
        "  await expect('probe\\n').toMatchFileSnapshot('./golden/probe.txt');",
        '});',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  /** Runs vitest on the probe with `args`; CI unset, so only the arguments decide. */
  async function vitest(args: string[]): Promise<{ status: number; out: string }> {
    const env = { ...process.env };
    delete env.CI;
    delete env.UPDATE_SNAPSHOT;
    try {
      const r = await run(VITEST, [...args, '--root', dir, '--reporter', 'default'], {
        cwd: dir,
        env,
        timeout: 120_000,
      });
      return { status: 0, out: r.stdout + r.stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { status: err.code, out: err.stdout + err.stderr };
    }
  }

  it('test.sh runs vitest with --update=none: a missing golden fails and is not written', async () => {
    const lines = await testShVitestArgs();
    expect(lines).toEqual([['run', '--update=none']]);
    const asTestSh = await vitest(lines[0] as string[]);
    expect(asTestSh.status, asTestSh.out).toBe(1);
    expect(asTestSh.out).toMatch(/Snapshot `matches its golden file 1` mismatched/);
    await expect(fs.access(path.join(dir, 'golden/probe.txt'))).rejects.toThrow(/ENOENT/);
  });

  it('a plain `vitest run` (a local run) writes the missing golden file', async () => {
    const local = await vitest(['run']);
    expect(local.status, local.out).toBe(0);
    expect(await fs.readFile(path.join(dir, 'golden/probe.txt'), 'utf8')).toBe('probe\n');
    await fs.rm(path.join(dir, 'golden'), { recursive: true });
  });
});
