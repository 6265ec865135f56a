import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quoteArgv, quoteWord } from '../../src/node/quote.js';
import { hostileArgs } from '../harness/hostile.js';

const canaryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'v2v-load-quote-'));
fs.writeFileSync(path.join(canaryDir, 'canary'), 'alive');
const HOSTILE_ARGS = hostileArgs(canaryDir);
afterAll(() => fs.rmSync(canaryDir, { recursive: true, force: true }));

function viaShell(shell: string, words: string[]): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${quoteArgv(words)}`]);
  return out.toString('utf8').split('\0').slice(0, -1);
}

describe('quoteWord', () => {
  it.each([
    ['abc', "'abc'"],
    ['', "''"],
    ["it's", "'it'\\''s'"],
    ['a b', "'a b'"],
    ['$x', "'$x'"],
  ])('quotes %j as %s', (word, quoted) => {
    expect(quoteWord(word)).toBe(quoted);
  });

  it('refuses a NUL byte, which no argv can carry', () => {
    expect(() => quoteWord('a\0b')).toThrow(/NUL byte/);
  });

  it('refuses an empty argv', () => {
    expect(() => quoteArgv([])).toThrow(/empty argv/);
  });
});

describe.each(['/bin/sh', '/bin/bash'])('quoteArgv through %s', (shell) => {
  // A shell start can take seconds on a loaded machine (a login shell's rc files).
  it('delivers every hostile argument byte for byte', { timeout: 60_000 }, () => {
    expect(viaShell(shell, HOSTILE_ARGS)).toEqual(HOSTILE_ARGS);
    expect(fs.readFileSync(path.join(canaryDir, 'canary'), 'utf8')).toBe('alive');
    expect(fs.existsSync(path.join(canaryDir, 'touched'))).toBe(false);
  });

  it('delivers random strings byte for byte', { timeout: 60_000 }, () => {
    const alphabet = [...'abc \'"\\$`;|&<>(){}[]*?~!#\n\t=%^,.:é☃'];
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const words = Array.from({ length: 200 }, () =>
      Array.from({ length: rand() % 12 }, () => alphabet[rand() % alphabet.length]).join(''),
    );
    expect(viaShell(shell, words)).toEqual(words);
  });
});
