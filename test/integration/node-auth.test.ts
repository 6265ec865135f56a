/**
 * How the SSH node logs in, against a real sshd and a real ssh-agent: OpenSSH's order (agent
 * keys, then --identity or ~/.ssh/id_*), and keys protected by a passphrase (a usage error
 * naming the key with an ssh-add hint, or the passphrase from V2V_LOAD_SSH_PASSPHRASE). No
 * passphrase ever appears in the output.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeUnreachableError, UsageError } from '../../src/errors.js';
import { StreamLogger } from '../../src/log/logger.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import { parseSshUrl } from '../../src/node/node-spec.js';
import { type SshdInfo, startSshd, stopSshd } from '../harness/sshd.js';

const exec = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/v2v-load.js');
const PASSPHRASE = 'secretphrase-9f3a';

let sshd: SshdInfo;
let dir: string;
/** Authorized, protected by PASSPHRASE. */
let locked: string;
/** The same key as `locked`, without a passphrase (what `ssh-add locked` puts in an agent). */
let unlocked: string;
/** Not authorized. */
let stranger: string;
const agents: ChildProcess[] = [];

async function keygen(file: string, passphrase: string): Promise<void> {
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'test', '-f', file]);
}

async function fingerprint(key: string): Promise<string> {
  const { stdout } = await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key}.pub`]);
  return stdout.split(/\s+/)[1] ?? '';
}

/** Fingerprints of the keys sshd accepted so far, in order. */
async function accepted(): Promise<string[]> {
  const log = await fs.readFile(sshd.logFile, 'utf8');
  return [...log.matchAll(/Accepted publickey for \S+ .* (SHA256:\S+)/g)].map((m) => m[1] ?? '');
}

/** A real ssh-agent on a socket of its own, holding `keys`. */
async function agentWith(name: string, ...keys: string[]): Promise<string> {
  const sock = path.join(dir, `${name}.agent`);
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  agents.push(agent);
  for (let i = 0; i < 100 && !(await fs.stat(sock).catch(() => undefined)); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const key of keys) await exec('ssh-add', ['-q', key], { env: { SSH_AUTH_SOCK: sock } });
  return sock;
}

/** Runs `fn` with these environment variables (undefined: unset), then restores them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** Logs in with a fresh factory and runs `echo ok`; returns the debug lines too. */
async function login(identity: string | undefined, env: Record<string, string | undefined>) {
  const lines: string[] = [];
  const nodes = new NodeFactory(undefined, {
    logger: new StreamLogger('debug', (l) => lines.push(l)),
  });
  try {
    return await withEnv(env, async () => {
      const node = await nodes.get({
        ssh: parseSshUrl(sshd.url),
        identity,
        knownHosts: sshd.knownHosts,
      });
      const r = await node.run(['echo', 'ok']);
      return { stdout: r.stdout, lines };
    });
  } finally {
    await nodes.closeAll();
  }
}

/** The real binary: `doctor --no-libguestfs` on the test sshd, with this environment. */
async function doctor(env: Record<string, string | undefined>, ...args: string[]) {
  const fullEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env }))
    if (v !== undefined) fullEnv[k] = v;
  const argv = [BIN, 'doctor', '--no-libguestfs', '--json', '--host', sshd.url];
  argv.push('--known-hosts', sshd.knownHosts, '--dir', dir, ...args);
  try {
    const r = await exec(process.execPath, argv, { env: fullEnv, timeout: 300_000 });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { status: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  sshd = await startSshd();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-auth-'));
  locked = path.join(dir, 'locked');
  unlocked = path.join(dir, 'unlocked');
  stranger = path.join(dir, 'stranger');
  await keygen(locked, PASSPHRASE);
  await keygen(stranger, '');
  await fs.copyFile(locked, unlocked);
  await fs.copyFile(`${locked}.pub`, `${unlocked}.pub`);
  await exec('ssh-keygen', ['-q', '-p', '-P', PASSPHRASE, '-N', '', '-f', unlocked]);
  await fs.appendFile(
    path.join(sshd.dir, 'authorized_keys'),
    await fs.readFile(`${locked}.pub`, 'utf8'),
  );
});

afterAll(async () => {
  for (const a of agents) a.kill();
  await stopSshd(sshd);
  await fs.rm(dir, { recursive: true, force: true });
});

describe('ssh login order: the agent, then the key files (as OpenSSH)', () => {
  it('an agent with an unrelated key does not stop --identity from being tried', async () => {
    const sock = await agentWith('unrelated', stranger);
    const before = (await accepted()).length;
    const r = await login(sshd.identity, { SSH_AUTH_SOCK: sock });
    expect(r.stdout).toBe('ok\n');
    const tries = r.lines.filter((l) => l.includes(': trying '));
    expect(tries).toEqual([
      expect.stringMatching(/: trying a key of the SSH agent\n$/),
      expect.stringMatching(new RegExp(`: trying key ${sshd.identity}\\n$`)),
    ]);
    expect((await accepted()).slice(before)).toEqual([await fingerprint(sshd.identity)]);
  });

  it('the agent is tried before --identity, as ssh -i does', async () => {
    const sock = await agentWith('authorized', sshd.identity);
    const before = (await accepted()).length;
    // --identity names a key the server refuses: the agent's key logs in first
    const r = await login(stranger, { SSH_AUTH_SOCK: sock });
    expect(r.stdout).toBe('ok\n');
    expect(r.lines.filter((l) => l.includes(': trying ')).length).toBe(1);
    expect(r.lines.join('')).toMatch(/logged in as root with a key of the SSH agent/);
    expect((await accepted()).slice(before)).toEqual([await fingerprint(sshd.identity)]);
  });

  it('with SSH_AUTH_SOCK set and no --identity, ~/.ssh/id_ed25519 is still tried', async () => {
    const home = path.join(dir, 'home');
    await fs.mkdir(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
    await fs.copyFile(sshd.identity, path.join(home, '.ssh', 'id_ed25519'));
    const sock = await agentWith('unrelated-cli', stranger);
    const before = (await accepted()).length;
    const r = await doctor({ HOME: home, SSH_AUTH_SOCK: sock }, '-v');
    expect(r.stderr).toMatch(/trying a key of the SSH agent\n.*trying key .*\/\.ssh\/id_ed25519\n/);
    expect(r.stderr).toMatch(/logged in as root with key .*\/\.ssh\/id_ed25519/);
    expect(JSON.parse(r.stdout)).toMatchObject({ node: sshd.url });
    expect((await accepted()).slice(before)).toEqual([await fingerprint(sshd.identity)]);
  });

  it('says which ways were tried when the server refuses them all', async () => {
    const sock = await agentWith('refused', stranger);
    const err = await login(stranger, { SSH_AUTH_SOCK: sock }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeUnreachableError);
    expect((err as Error).message).toBe(
      `cannot log in to ${sshd.url} as root: the server refused the key ` +
        `(tried the SSH agent, ${stranger})`,
    );
  });

  it('an SSH_AUTH_SOCK with no agent behind it is skipped, as ssh does', async () => {
    const r = await login(sshd.identity, { SSH_AUTH_SOCK: path.join(dir, 'no-such.agent') });
    expect(r.stdout).toBe('ok\n');
  });
});

describe('a key protected by a passphrase', () => {
  it('without an agent: exit 2 before connecting, naming the key, hint ssh-add', async () => {
    const before = (await accepted()).length;
    const r = await doctor(
      { SSH_AUTH_SOCK: undefined, V2V_LOAD_SSH_PASSPHRASE: undefined },
      '--identity',
      locked,
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      `v2v-load: error: --identity '${locked}': the key is protected by a passphrase, ` +
        'which v2v-load does not prompt for\n',
    );
    expect(r.stderr).toContain(`ssh-add ${locked}`);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 'USAGE' });
    expect((await accepted()).length).toBe(before);
  });

  it('loaded into an agent: the agent logs in, the file is never needed', async () => {
    const sock = await agentWith('unlocked', unlocked);
    const r = await login(locked, { SSH_AUTH_SOCK: sock, V2V_LOAD_SSH_PASSPHRASE: undefined });
    expect(r.stdout).toBe('ok\n');
    expect(r.lines.join('')).toMatch(/logged in as root with a key of the SSH agent/);
  });

  it('an agent without it: the same usage error once the agent keys are refused', async () => {
    const sock = await agentWith('without', stranger);
    const err = await login(locked, {
      SSH_AUTH_SOCK: sock,
      V2V_LOAD_SSH_PASSPHRASE: undefined,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(
      `--identity '${locked}': the key is protected by a passphrase, which v2v-load does not ` +
        'prompt for and no key of the SSH agent was accepted',
    );
  });

  it('V2V_LOAD_SSH_PASSPHRASE unlocks it; the passphrase is never printed', async () => {
    const before = (await accepted()).length;
    const r = await doctor(
      { SSH_AUTH_SOCK: undefined, V2V_LOAD_SSH_PASSPHRASE: PASSPHRASE },
      '--identity',
      locked,
      '-v',
    );
    expect(r.stderr).toMatch(/logged in as root with key /);
    expect(r.stderr).toMatch(
      /debug: run on ssh:\/\/root@127\.0\.0\.1:\d+: qemu-img --version: exit 0 \(\d+ ms\)/,
    );
    expect(JSON.parse(r.stdout)).toMatchObject({ node: sshd.url });
    expect(r.stdout + r.stderr).not.toContain(PASSPHRASE);
    expect((await accepted()).slice(before)).toEqual([await fingerprint(locked)]);
  });

  it('a wrong passphrase: exit 2 naming the key and the variable, never the passphrase', async () => {
    const wrong = 'wrongphrase-7c1d';
    const r = await doctor(
      { SSH_AUTH_SOCK: undefined, V2V_LOAD_SSH_PASSPHRASE: wrong },
      '--identity',
      locked,
      '-v',
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      `--identity '${locked}': the passphrase in V2V_LOAD_SSH_PASSPHRASE does not decrypt the key`,
    );
    expect(r.stdout + r.stderr).not.toContain(wrong);
    expect(r.stdout + r.stderr).not.toContain(PASSPHRASE);
  });
});
