import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostKeyMismatchError, UnknownHostKeyError } from '../../src/errors.js';
import {
  entryMatches,
  fingerprintOf,
  HostKeyVerifier,
  keyTypeOf,
  knownHostsName,
  parseKnownHosts,
} from '../../src/node/ssh/host-keys.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/known_hosts');
let dir: string;
let keyA: Buffer; // ed25519
let keyB: Buffer; // another ed25519
let lineA: string;

function makeKey(name: string): { blob: Buffer; line: string; fingerprint: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  const [type, b64] = execFileSync('cat', [`${file}.pub`])
    .toString()
    .trim()
    .split(/\s+/);
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`]).toString();
  return {
    blob: Buffer.from(b64 ?? '', 'base64'),
    line: `${type} ${b64}`,
    fingerprint: fp.split(/\s+/)[1] ?? '',
  };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-hostkeys-'));
  const a = makeKey('a');
  keyA = a.blob;
  lineA = a.line;
  keyB = makeKey('b').blob;
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('known_hosts parsing', () => {
  it('parses the shapes OpenSSH writes (golden)', async () => {
    const text = await fs.readFile(path.join(GOLDEN, 'sample.known_hosts'), 'utf8');
    const parsed = parseKnownHosts(text).map(({ key, ...rest }) => ({
      ...rest,
      key: `${key.slice(0, 12)}...`,
    }));
    await expect(`${JSON.stringify(parsed, null, 2)}\n`).toMatchFileSnapshot(
      path.join(GOLDEN, 'sample.parsed.json'),
    );
  });

  it('matches plain, [host]:port, wildcard, negated and hashed names', async () => {
    const entries = parseKnownHosts(
      await fs.readFile(path.join(GOLDEN, 'sample.known_hosts'), 'utf8'),
    );
    const matching = (name: string) =>
      entries.filter((e) => entryMatches(e, name)).map((e) => e.line);
    expect(matching('vmhost1')).toEqual([2]);
    expect(matching('10.0.0.5')).toEqual([2]);
    expect(matching(knownHostsName('vmhost2', 2222))).toEqual([3]);
    expect(matching('vmhost2')).toEqual([]);
    expect(matching('node7.lab.example')).toEqual([5, 7]); // 7: @cert-authority *.example
    expect(matching('bad.lab.example')).toEqual([7]); // negated on line 5 only
    expect(matching('hashme')).toEqual([9]);
    expect(matching('hashme2')).toEqual([]);
  });

  it('fingerprints keys as ssh-keygen does', () => {
    const k = makeKey('c');
    expect(fingerprintOf(k.blob)).toBe(k.fingerprint);
    expect(keyTypeOf(k.blob)).toBe('ssh-ed25519');
  });
});

describe('HostKeyVerifier', () => {
  const node = 'ssh://root@vmhost9:2222';
  const file = () => path.join(dir, 'known_hosts');

  it('accepts the key on record', async () => {
    await fs.writeFile(file(), `[vmhost9]:2222 ${lineA}\n`);
    const v = new HostKeyVerifier(
      { knownHostsFile: file(), acceptNew: false },
      node,
      'vmhost9',
      2222,
    );
    await expect(v.verify(keyA)).resolves.toBeUndefined();
    expect(await v.knownKeyTypes()).toEqual(['ssh-ed25519']);
  });

  it('refuses a changed key, naming both fingerprints and the line on record', async () => {
    await fs.writeFile(file(), `# first line\n[vmhost9]:2222 ${lineA}\n`);
    const v = new HostKeyVerifier(
      { knownHostsFile: file(), acceptNew: true },
      node,
      'vmhost9',
      2222,
    );
    const err = await v.verify(keyB).catch((e) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect(err.message).toContain(fingerprintOf(keyB));
    expect(err.message).toContain(`${fingerprintOf(keyA)} (${file()}:2)`);
    // acceptNew never accepts a changed key, and the file is left alone.
    expect(await fs.readFile(file(), 'utf8')).toBe(`# first line\n[vmhost9]:2222 ${lineA}\n`);
  });

  it('refuses an unknown key unless accepting new keys was asked, then records it', async () => {
    await fs.rm(file(), { force: true });
    const strict = new HostKeyVerifier(
      { knownHostsFile: file(), acceptNew: false },
      node,
      'vmhost9',
      2222,
    );
    const err = await strict.verify(keyA).catch((e) => e);
    expect(err).toBeInstanceOf(UnknownHostKeyError);
    expect(err.message).toContain(fingerprintOf(keyA));
    expect(err.hint).toMatch(/--accept-new-host-key/);

    const tofu = new HostKeyVerifier(
      { knownHostsFile: file(), acceptNew: true },
      node,
      'vmhost9',
      2222,
    );
    await tofu.verify(keyA);
    expect(await fs.readFile(file(), 'utf8')).toBe(`[vmhost9]:2222 ${lineA}\n`);
    await expect(strict.verify(keyA)).resolves.toBeUndefined();
  });

  it('refuses a @revoked key even when it is also on record', async () => {
    await fs.writeFile(file(), `vmhost9 ${lineA}\n@revoked vmhost9 ${lineA}\n`);
    const v = new HostKeyVerifier(
      { knownHostsFile: file(), acceptNew: false },
      'ssh://root@vmhost9:22',
      'vmhost9',
      22,
    );
    await expect(v.verify(keyA)).rejects.toThrow(/@revoked/);
  });

  it('checks a pinned fingerprint instead of known_hosts', async () => {
    const pinned = new HostKeyVerifier(
      {
        knownHostsFile: '/nonexistent/known_hosts',
        acceptNew: false,
        pinnedFingerprint: fingerprintOf(keyA),
      },
      node,
      'vmhost9',
      2222,
    );
    await expect(pinned.verify(keyA)).resolves.toBeUndefined();
    await expect(pinned.verify(keyB)).rejects.toBeInstanceOf(HostKeyMismatchError);
  });
});
