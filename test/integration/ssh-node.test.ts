/**
 * The SSH node against a real sshd on 127.0.0.1 (started by the global set-up, or by a test
 * that needs to kill its own).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ConnectionLostError,
  HostKeyMismatchError,
  NodeUnreachableError,
  UnknownHostKeyError,
} from '../../src/errors.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import type { NodeSpec } from '../../src/node/node-spec.js';
import { parseSshUrl } from '../../src/node/node-spec.js';
import { DEFAULT_SSH_OPTIONS } from '../../src/node/ssh/ssh-connection.js';
import type { SshNode } from '../../src/node/ssh/ssh-node.js';
import {
  killSshd,
  runSshd,
  type SshdInfo,
  sshdProcesses,
  startSshd,
  stopSshd,
} from '../harness/sshd.js';
import { nodeContract } from './node-contract.js';

const sshd = inject('sshd');
const factory = new NodeFactory();
const spec = (info: SshdInfo, extra: Partial<NodeSpec> = {}): NodeSpec => ({
  ssh: parseSshUrl(info.url),
  identity: info.identity,
  knownHosts: info.knownHosts,
  ...extra,
});

afterAll(() => factory.closeAll());

nodeContract('ssh', () => factory.get(spec(sshd)));

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

function acceptedLogins(log: string): number {
  return log.split('\n').filter((l) => l.includes('Accepted publickey')).length;
}

describe('ssh node: one pooled connection', () => {
  it('runs 50 concurrent commands over one connection', async () => {
    const own = new NodeFactory();
    try {
      const before = acceptedLogins(await fs.readFile(sshd.logFile, 'utf8'));
      const node = (await own.get(spec(sshd))) as SshNode;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => node.run(['sh', '-c', `sleep 0.2; echo ${i}`])),
      );
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 50 }, (_, i) => `${i}\n`));
      expect(node.connection.connects).toBe(1);
      // a second node for the same host shares the connection
      const again = (await own.get(spec(sshd))) as SshNode;
      expect(again.connection).toBe(node.connection);
      await again.run(['true']);
      const after = acceptedLogins(await fs.readFile(sshd.logFile, 'utf8'));
      expect(after - before).toBe(1);
    } finally {
      await own.closeAll();
    }
  });
});

describe('ssh node: host keys', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-hostkey-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  async function attempt(extra: Partial<NodeSpec>) {
    const own = new NodeFactory();
    try {
      const node = await own.get(spec(sshd, extra));
      return await node.run(['echo', 'connected']);
    } finally {
      await own.closeAll();
    }
  }

  it('refuses an unknown host key, naming its fingerprint', async () => {
    const empty = path.join(dir, 'empty_known_hosts');
    await fs.writeFile(empty, '');
    const err = await attempt({ knownHosts: empty }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownHostKeyError);
    expect((err as Error).message).toContain(sshd.hostKeyFingerprint);
    expect((err as UnknownHostKeyError).exitStatus).toBe(3);
    expect(await fs.readFile(empty, 'utf8')).toBe('');
  });

  it('records an unknown key only with accept-new, then trusts it', async () => {
    const file = path.join(dir, 'tofu_known_hosts');
    const r = await attempt({ knownHosts: file, acceptNewHostKey: true });
    expect(r.stdout).toBe('connected\n');
    expect(await fs.readFile(file, 'utf8')).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`);
    expect((await attempt({ knownHosts: file })).stdout).toBe('connected\n');
  });

  it('refuses a changed host key even with accept-new', async () => {
    const other = await startSshd();
    try {
      // the other sshd's key recorded for our sshd's address: as if the host was replaced
      const file = path.join(dir, 'changed_known_hosts');
      await fs.writeFile(file, `[127.0.0.1]:${sshd.port} ${other.hostKeyLine}\n`);
      const err = await attempt({ knownHosts: file, acceptNewHostKey: true }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HostKeyMismatchError);
      expect((err as Error).message).toContain(sshd.hostKeyFingerprint);
      expect((err as Error).message).toContain(other.hostKeyFingerprint);
    } finally {
      await stopSshd(other);
    }
  });

  it('checks a pinned fingerprint', async () => {
    const pinned = { knownHosts: '/nonexistent/known_hosts' };
    const ok = await attempt({ ...pinned, hostKeyFingerprint: sshd.hostKeyFingerprint });
    expect(ok.stdout).toBe('connected\n');
    const wrong = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    await expect(attempt({ ...pinned, hostKeyFingerprint: wrong })).rejects.toBeInstanceOf(
      HostKeyMismatchError,
    );
  });

  it('says the key was refused when the identity is not authorized', async () => {
    const key = path.join(dir, 'stranger');
    const { execFileSync } = await import('node:child_process');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const err = await attempt({ identity: key }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeUnreachableError);
    expect((err as Error).message).toMatch(
      /cannot log in to .* as root: the server refused the key/,
    );
    expect((err as NodeUnreachableError).retryable).toBe(false);
  });

  it('logs in with a key held by an SSH agent', async () => {
    const { execFileSync, spawn } = await import('node:child_process');
    const sock = path.join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !(await fs.stat(sock).catch(() => undefined)); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      execFileSync('ssh-add', ['-q', sshd.identity], { env: { SSH_AUTH_SOCK: sock } });
      const saved = process.env.SSH_AUTH_SOCK;
      process.env.SSH_AUTH_SOCK = sock;
      try {
        const r = await attempt({ identity: undefined });
        expect(r.stdout).toBe('connected\n');
      } finally {
        if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
        else process.env.SSH_AUTH_SOCK = saved;
      }
    } finally {
      agent.kill();
    }
  });

  it('says the connection was refused when nothing listens', async () => {
    const info = { ...sshd, url: 'ssh://root@127.0.0.1:1' };
    const err = await attempt({ ssh: parseSshUrl(info.url) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeUnreachableError);
    expect((err as Error).message).toBe(
      'cannot connect to ssh://root@127.0.0.1:1: connection refused',
    );
  });
});

describe('ssh node: sshd dies mid-command', () => {
  let own: SshdInfo;
  const ownFactory = new NodeFactory();
  beforeAll(async () => {
    own = await startSshd();
  });
  afterAll(async () => {
    await ownFactory.closeAll();
    await stopSshd(own);
  });

  it('gives a clear error, never reruns the command, and the next command reconnects', async () => {
    const node = (await ownFactory.get(spec(own))) as SshNode;
    expect((await node.run(['echo', 'before'])).stdout).toBe('before\n');
    const ran = path.join(own.dir, 'ran');
    const script = `echo once >> ${ran}; sleep 30`;
    const running = node.run(['sh', '-c', script]).catch((e: unknown) => e);
    // kill sshd once the command runs (a fixed delay is too short on a busy machine)
    for (let i = 0; i < 600 && !(await fs.stat(ran).catch(() => undefined)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await killSshd(own);
    const err = await running;
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect((err as Error).message).toBe(
      `connection to ${own.url} was lost while \`sh -c ${JSON.stringify(script)}\` ran; ` +
        'whether it finished is unknown',
    );

    await runSshd(own);
    expect((await node.run(['echo', 'after'])).stdout).toBe('after\n');
    expect(node.connection.connects).toBe(2);
    // a command that started is never retried, even though the connection came back
    expect(await fs.readFile(ran, 'utf8')).toBe('once\n');
  });

  it('a failed command is not retried', async () => {
    const node = await ownFactory.get(spec(own));
    const ran = path.join(own.dir, 'ran-failing');
    await expect(node.run(['sh', '-c', `echo once >> ${ran}; exit 1`])).rejects.toThrow(
      /exited with code 1/,
    );
    expect(await fs.readFile(ran, 'utf8')).toBe('once\n');
  });

  it('keepalive notices a host that stops answering', async () => {
    const quick = new NodeFactory({
      ...DEFAULT_SSH_OPTIONS,
      keepaliveIntervalMs: 300,
      keepaliveCountMax: 2,
    });
    try {
      const node = await quick.get(spec(own));
      await node.run(['true']);
      const running = node.run(['sleep', '30']).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      // freeze sshd and every connection it serves: TCP stays up, nothing answers
      const frozen = await sshdProcesses(own);
      // a session's short-lived processes (root's shell start-up) may be gone by now
      const signal = (pid: number, sig: NodeJS.Signals) => {
        try {
          process.kill(pid, sig);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
        }
      };
      for (const pid of frozen) signal(pid, 'SIGSTOP');
      try {
        // `sleep 30` would end by itself after 30 s; the keepalive must cut it short first
        const err = await running;
        expect(err).toBeInstanceOf(ConnectionLostError);
      } finally {
        for (const pid of frozen) signal(pid, 'SIGCONT');
      }
    } finally {
      await quick.closeAll();
    }
  });
});

describe('ssh node: SFTP', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-sftp-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('round-trips a 100 MiB file with its checksum intact', async () => {
    const node = await factory.get(spec(sshd));
    const src = path.join(dir, 'disk.img');
    const fh = await fs.open(src, 'w');
    for (let i = 0; i < 100; i++) await fh.write(randomBytes(1024 * 1024));
    await fh.close();
    const want = await sha256File(src);

    const remote = path.join(dir, 'remote', 'disk.img');
    await node.mkdir(path.dirname(remote), { recursive: true });
    await node.upload(src, remote);
    const remoteSum = await node.run(['sha256sum', '--', remote]);
    expect(remoteSum.stdout.split(' ')[0]).toBe(want);

    const back = path.join(dir, 'back.img');
    await node.download(remote, back);
    expect(await sha256File(back)).toBe(want);
    expect((await node.stat(back))?.size).toBe(100 * 1024 * 1024);
    const leftovers = [...(await fs.readdir(dir)), ...(await fs.readdir(path.dirname(remote)))];
    expect(leftovers.filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});
