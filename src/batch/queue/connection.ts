/**
 * The queue's Redis: `--queue redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]` (`rediss://` for
 * TLS). The password comes from the URL or from V2V_LOAD_REDIS_PASSWORD and is never shown:
 * every message names the URL without it ({@link QueueTarget.display}).
 */
import type { RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { ExitCode, UsageError, V2vError } from '../../errors.js';
import { redactUrlInput } from '../../log/redact.js';

/** The environment variable holding the Redis password (when the URL has none). */
export const REDIS_PASSWORD_ENV = 'V2V_LOAD_REDIS_PASSWORD';

/** A queue operation failed: the batch is there already, or not there, or Redis refused. */
export class QueueError extends V2vError {
  override readonly code: string = 'QUEUE';
}

/** Redis does not answer, or refuses the password: exit 3, like an unreachable node. */
export class QueueUnreachableError extends QueueError {
  override readonly code = 'QUEUE_UNREACHABLE';
  override readonly exitStatus = ExitCode.NodeUnreachable;
}

export interface QueueTarget {
  host: string;
  port: number;
  db: number;
  username?: string | undefined;
  password?: string | undefined;
  tls: boolean;
  /** The URL without its password, for every message. */
  display: string;
}

/** Parses `--queue`; a usage error (exit 2) names the value without its password. */
export function parseQueueUrl(
  value: string,
  env: Record<string, string | undefined> = process.env,
): QueueTarget {
  const shown = `--queue '${redactUrlInput(value)}'`;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`${shown}: not a URL`, { hint: 'give redis://HOST:PORT/DB' });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UsageError(`${shown}: not a redis:// URL`, {
      hint: 'give redis://HOST:PORT/DB (rediss:// for TLS)',
    });
  }
  if (!u.hostname) throw new UsageError(`${shown}: names no host`);
  if (u.search || u.hash) {
    throw new UsageError(`${shown}: takes no query or fragment`, {
      hint: 'give redis://HOST:PORT/DB',
    });
  }
  const dbText = u.pathname.replace(/^\//, '');
  if (!/^\d{0,2}$/.test(dbText)) {
    throw new UsageError(`${shown}: the database is a number (redis://HOST:PORT/0), not ${dbText}`);
  }
  const db = dbText ? Number(dbText) : 0;
  const port = u.port ? Number(u.port) : 6379;
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password =
    (u.password ? decodeURIComponent(u.password) : undefined) || env[REDIS_PASSWORD_ENV];
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port,
    db,
    username,
    password: password || undefined,
    tls: u.protocol === 'rediss:',
    display: `${u.protocol}//${username ? `${username}@` : ''}${u.host}/${db}`,
  };
}

/**
 * ioredis options for BullMQ: commands wait while Redis is away (a restart) and the connection
 * is tried again for ever, every 2 s at most.
 */
export function redisOptions(t: QueueTarget): RedisOptions {
  return {
    host: t.host,
    port: t.port,
    db: t.db,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

/** What went wrong talking to Redis, in words, without the password. */
function why(e: unknown): { text: string; hint: string } {
  const m = e instanceof Error ? e.message : String(e);
  if (/NOAUTH|Authentication required/i.test(m)) {
    return {
      text: 'Redis wants a password',
      hint: `put it in ${REDIS_PASSWORD_ENV} (or in the URL: redis://:PASSWORD@HOST:PORT/DB)`,
    };
  }
  if (/WRONGPASS|invalid password|invalid username-password/i.test(m)) {
    return { text: 'Redis refused the password', hint: `check ${REDIS_PASSWORD_ENV} or the URL` };
  }
  if (/DB index is out of range/i.test(m)) {
    return { text: 'no such database on that Redis', hint: 'give a database number it has' };
  }
  return {
    text: `Redis does not answer (${m})`,
    hint: 'start redis-server there, or check the host, the port and the firewall',
  };
}

/** Checks that Redis answers and takes the password, within a few seconds. */
export async function checkQueue(t: QueueTarget): Promise<void> {
  const r = new Redis({
    ...redisOptions(t),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let cause: unknown;
  r.on('error', (e: unknown) => {
    cause ??= e; // the socket's error (ECONNREFUSED, ...): clearer than "Connection is closed"
  });
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    const w = why(/Connection is closed/.test(String(e)) && cause ? cause : e);
    throw new QueueUnreachableError(`--queue ${t.display}: ${w.text}`, { hint: w.hint });
  } finally {
    r.disconnect();
  }
}

/** A plain Redis client for the batch's own keys (same settings as BullMQ's). */
export function redisClient(t: QueueTarget): Redis {
  const r = new Redis(redisOptions(t));
  r.on('error', () => {});
  return r;
}
