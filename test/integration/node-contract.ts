/**
 * What every node must do, run against each kind (local.test.ts, ssh-node.test.ts) with real
 * processes: the same assertions prove both behave alike.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError, CommandNotFoundError, NodeFileError } from '../../src/errors.js';
import type { Node } from '../../src/node/node.js';
import { hostileArgs } from '../harness/hostile.js';

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

export function nodeContract(kind: string, getNode: () => Promise<Node>): void {
  describe(`${kind} node contract`, () => {
    let node: Node;
    let dir: string;

    beforeAll(async () => {
      node = await getNode();
      dir = await fs.mkdtemp(path.join(os.tmpdir(), `v2v-load-${kind}-`));
    });
    afterAll(async () => {
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('passes hostile arguments byte for byte', async () => {
      await fs.writeFile(path.join(dir, 'canary'), 'alive');
      const args = hostileArgs(dir);
      const r = await node.run(['printf', '%s\\0', ...args]);
      expect(r.stdout.split('\0').slice(0, -1)).toEqual(args);
      // no shell interpreted them: the canary lives and nothing was touched
      expect(await fs.readFile(path.join(dir, 'canary'), 'utf8')).toBe('alive');
      await expect(fs.access(path.join(dir, 'touched'))).rejects.toThrow();
    });

    it('reports a failing command with argv, exit code and stderr', async () => {
      const err = await node
        .run(['sh', '-c', 'echo "no such image" >&2; exit 3'])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CommandError);
      const ce = err as CommandError;
      expect(ce.exitCode).toBe(3);
      expect(ce.stderr).toBe('no such image\n');
      expect(ce.argv).toEqual(['sh', '-c', 'echo "no such image" >&2; exit 3']);
      expect(ce.node).toBe(node.name);
      expect(ce.timedOut).toBe(false);
      expect(ce.message).toContain('exited with code 3: no such image');
    });

    it('returns a failure as a result with reject: false', async () => {
      const r = await node.run(['sh', '-c', 'echo out; exit 5'], { reject: false });
      expect(r.exitCode).toBe(5);
      expect(r.stdout).toBe('out\n');
    });

    it('says when a program is not installed', async () => {
      const err = await node.run(['v2v-load-no-such-program', '--x']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CommandNotFoundError);
      expect((err as Error).message).toContain('v2v-load-no-such-program');
    });

    it('feeds stdin from a string, bytes and a stream', async () => {
      expect((await node.run(['cat'], { stdin: 'hello\n' })).stdout).toBe('hello\n');
      const bytes = Buffer.alloc(10 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
      const r = await node.run(['sha256sum'], { stdin: bytes });
      expect(r.stdout.split(' ')[0]).toBe(sha256(bytes));
      const r2 = await node.run(['wc', '-c'], { stdin: Readable.from([bytes, bytes]) });
      expect(r2.stdout.trim()).toBe(String(2 * bytes.length));
    });

    it('gives an empty stdin when none is given', async () => {
      expect((await node.run(['cat'], { timeoutMs: 10_000 })).stdout).toBe('');
    });

    it('returns large output whole, text and binary', async () => {
      const r = await node.run(['seq', '1', '1500000']);
      const expected = `${Array.from({ length: 1_500_000 }, (_, i) => i + 1).join('\n')}\n`;
      expect(r.stdout.length).toBe(expected.length);
      expect(sha256(r.stdout)).toBe(sha256(expected));
      const bin = await node.run(['sh', '-c', "head -c 4194304 /dev/zero | tr '\\000' '\\377'"]);
      expect(bin.stdoutBytes.length).toBe(4 * 1024 * 1024);
      expect(bin.stdoutBytes.every((b) => b === 0xff)).toBe(true);
    });

    it('streams output while the command runs', async () => {
      // The command waits for a flag that the test creates only once it has seen the first
      // line: without streaming it would never finish (and time out).
      const flag = path.join(dir, 'seen-first');
      const chunks: string[] = [];
      const r = await node.run(
        ['sh', '-c', `echo first; while [ ! -e '${flag}' ]; do sleep 0.05; done; echo second`],
        {
          timeoutMs: 30_000,
          onStdout: (c) => {
            chunks.push(c.toString());
            if (chunks.join('').includes('first')) void fs.writeFile(flag, '');
          },
        },
      );
      expect(r.stdout).toBe('first\nsecond\n');
      expect(chunks.join('')).toBe('first\nsecond\n');
    });

    it('passes environment variables exactly', async () => {
      const value = "a b 'c' $HOME `x` \n end";
      const r = await node.run(['sh', '-c', 'printf %s "$V2V_TEST"'], { env: { V2V_TEST: value } });
      expect(r.stdout).toBe(value);
    });

    it('kills a timed-out command and its children', async () => {
      const marker = `${900 + Math.floor(Math.random() * 99)}.${process.pid}`;
      const err = await node
        .run(['sh', '-c', `sleep ${marker} & sleep ${marker}; wait`], { timeoutMs: 1000 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CommandError);
      expect((err as CommandError).timedOut).toBe(true);
      expect((err as Error).message).toMatch(/timed out after \d+ ms and was killed/);
      const gone = await waitFor(async () => {
        const p = await node.run(['pgrep', '-f', `sleep ${marker}`], { reject: false });
        return p.exitCode === 1;
      }, 5000);
      expect(gone).toBe(true);
    });

    it('kills a command when its AbortSignal fires', async () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const err = await node.run(['sleep', '30'], { signal: ac.signal }).catch((e: unknown) => e);
      expect((err as CommandError).aborted).toBe(true);
    });

    it('does file operations: mkdir, atomic write, read, stat, list, rename, remove', async () => {
      const base = path.join(dir, 'files', 'deep');
      await node.mkdir(base, { recursive: true });
      expect((await node.stat(base))?.type).toBe('directory');

      const f = path.join(base, 'guest.xml');
      await node.writeFileAtomic(f, '<domain/>\n', { mode: 0o600 });
      expect((await node.readFile(f)).toString()).toBe('<domain/>\n');
      const st = await node.stat(f);
      expect(st).toMatchObject({ type: 'file', size: 10, mode: 0o600 });
      expect(st?.mtime.getTime()).toBeGreaterThan(Date.now() - 60_000);

      // overwrite atomically; no temporary file stays behind
      await node.writeFileAtomic(f, Buffer.from('<domain type="kvm"/>\n'));
      expect((await node.readFile(f)).toString()).toBe('<domain type="kvm"/>\n');
      await node.writeFileAtomic(path.join(base, 'a.txt'), 'a');
      expect(await node.list(base)).toEqual([
        { name: 'a.txt', type: 'file' },
        { name: 'guest.xml', type: 'file' },
      ]);

      // rename replaces an existing target
      await node.rename(path.join(base, 'a.txt'), f);
      expect((await node.readFile(f)).toString()).toBe('a');
      expect((await node.list(base)).map((e) => e.name)).toEqual(['guest.xml']);

      await node.remove(f);
      expect(await node.stat(f)).toBeUndefined();
      await node.remove(f); // a missing path is not an error
      await node.remove(path.join(dir, 'files'), { recursive: true });
      expect(await node.stat(path.join(dir, 'files'))).toBeUndefined();
    });

    it('renames with noReplace: never over an existing file or directory; one racer wins', async () => {
      const base = path.join(dir, 'noreplace');
      await fs.mkdir(base);
      const at = (n: string) => path.join(base, n);
      await fs.writeFile(at('out.tmp'), 'ours');
      await fs.writeFile(at('out.qcow2'), 'theirs');
      const err = await node
        .rename(at('out.tmp'), at('out.qcow2'), { noReplace: true })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeFileError);
      expect((err as Error).message).toContain(`${at('out.tmp')} -> ${at('out.qcow2')}`);
      expect((err as Error).message).toContain('EEXIST');
      // both untouched
      expect(await fs.readFile(at('out.qcow2'), 'utf8')).toBe('theirs');
      expect(await fs.readFile(at('out.tmp'), 'utf8')).toBe('ours');
      // an empty directory is not replaced either (rename(2) would replace it)
      await fs.mkdir(at('empty-dir'));
      await fs.mkdir(at('dir.tmp'));
      await fs.writeFile(path.join(at('dir.tmp'), 'owner.json'), '{}');
      await expect(
        node.rename(at('dir.tmp'), at('empty-dir'), { noReplace: true }),
      ).rejects.toThrow(/EEXIST/);
      expect(await fs.readdir(at('empty-dir'))).toEqual([]);
      // a free name: renamed, the old name gone; directories too
      await node.rename(at('out.tmp'), at('free.qcow2'), { noReplace: true });
      await node.rename(at('dir.tmp'), at('free-dir'), { noReplace: true });
      expect((await fs.readdir(base)).sort()).toEqual([
        'empty-dir',
        'free-dir',
        'free.qcow2',
        'out.qcow2',
      ]);
      expect(await fs.readFile(at('free.qcow2'), 'utf8')).toBe('ours');
      expect(await fs.readdir(at('free-dir'))).toEqual(['owner.json']);
      // ten renames onto one free name at once: exactly one wins, the others keep their file
      for (let i = 0; i < 10; i++) await fs.writeFile(at(`racer-${i}`), `racer ${i}`);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          node.rename(at(`racer-${i}`), at('race.qcow2'), { noReplace: true }),
        ),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      expect(await fs.readFile(at('race.qcow2'), 'utf8')).toBe(`racer ${won[0]}`);
      const left = (await fs.readdir(base)).filter((n) => n.startsWith('racer-')).sort();
      expect(left).toEqual(
        Array.from({ length: 10 }, (_, i) => `racer-${i}`)
          .filter((_, i) => i !== won[0])
          .sort(),
      );
    });

    it('reads a byte range, short at the end of the file, through a symlink', async () => {
      const f = path.join(dir, 'range.bin');
      const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
      await fs.writeFile(f, data);
      await fs.symlink(f, path.join(dir, 'range-link'));
      expect(await node.readFileRange(f, 0, 16)).toEqual(data.subarray(0, 16));
      // larger than one SFTP read, at an odd offset
      expect(await node.readFileRange(f, 1234, 200_000)).toEqual(data.subarray(1234, 201_234));
      expect(await node.readFileRange(f, 299_990, 100)).toEqual(data.subarray(299_990));
      expect((await node.readFileRange(f, 400_000, 10)).length).toBe(0);
      expect(await node.readFileRange(path.join(dir, 'range-link'), 512, 8)).toEqual(
        data.subarray(512, 520),
      );
      await expect(node.readFileRange(path.join(dir, 'nope'), 0, 1)).rejects.toThrow(/ENOENT/);
    });

    it('names the path and the node when a file operation fails', async () => {
      const missing = path.join(dir, 'missing', 'disk.vmdk');
      const err = await node.readFile(missing).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeFileError);
      expect((err as Error).message).toContain(missing);
      expect((err as Error).message).toMatch(/ENOENT/);
      await expect(node.list(missing)).rejects.toBeInstanceOf(NodeFileError);
    });

    it('uploads and downloads files atomically', async () => {
      const src = path.join(dir, 'up.bin');
      const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 256));
      await fs.writeFile(src, data);
      const onNode = path.join(dir, 'on-node.bin');
      await node.upload(src, onNode);
      const back = path.join(dir, 'back.bin');
      await node.download(onNode, back);
      expect(sha256(await fs.readFile(back))).toBe(sha256(data));
      expect((await fs.readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
    });
  });
}
