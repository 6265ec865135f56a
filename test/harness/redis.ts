/**
 * A redis-server of the test's own (Debian's package; no systemd here): on a free port, bound to
 * loopback (and to the test's own network namespace link when asked), its own directory and
 * append-only file (fsync at every write), so a restart keeps the queue as a real deployment's
 * Redis would. `restart()` stops it (SIGTERM) and starts it again on the same port and files.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface PrivateRedis {
  dir: string;
  port: number;
  /** `redis://127.0.0.1:PORT/0` (no password in it). */
  url: string;
  /** The password it requires, when one was asked for. */
  password: string | undefined;
  pid(): number | undefined;
  /**
   * Stops it (SIGTERM: it writes its files) and starts it again on the same port, after `downMs`
   * (default at once).
   */
  restart(opts?: { downMs?: number }): Promise<void>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** More addresses to listen on besides 127.0.0.1 (a test's veth end). */
  bind?: string[];
  /** Require this password (`requirepass`). */
  password?: string;
}

/** A TCP port nobody listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`private redis: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startPrivateRedis(opts: RedisOptions = {}): Promise<PrivateRedis> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-redis-'));
  const port = await freePort();
  const conf = path.join(dir, 'redis.conf');
  await fs.writeFile(
    conf,
    [
      `port ${port}`,
      `bind 127.0.0.1 ${(opts.bind ?? []).join(' ')}`.trimEnd(),
      'protected-mode no',
      `dir ${dir}`,
      `logfile ${path.join(dir, 'redis.log')}`,
      'daemonize no',
      'save ""',
      'appendonly yes',
      'appendfsync always',
      // BullMQ's advice: never evict a key.
      'maxmemory-policy noeviction',
      ...(opts.password ? [`requirepass ${opts.password}`] : []),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  let child: ChildProcess | undefined;
  const answers = () =>
    exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping'], {
      env: { ...process.env, ...(opts.password ? { REDISCLI_AUTH: opts.password } : {}) },
      timeout: 5000,
    }).then(
      (r) => r.stdout.trim() === 'PONG',
      () => false,
    );
  const start = async () => {
    child = spawn('redis-server', [conf], { stdio: 'ignore' });
    const c = child;
    await waitFor(
      async () => {
        if (c.exitCode !== null) {
          const log = await fs.readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => '');
          throw new Error(`private redis: redis-server exited ${c.exitCode}:\n${log.slice(-2000)}`);
        }
        return answers();
      },
      30_000,
      'redis-server to answer',
    );
  };
  const halt = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await gone;
    }
  };
  await start();
  return {
    dir,
    port,
    url: `redis://127.0.0.1:${port}/0`,
    password: opts.password,
    pid: () => child?.pid,
    async restart({ downMs = 0 } = {}) {
      await halt();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async stop() {
      await halt();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
