/**
 * One SSH connection to one host, shared by every command and file operation on that host:
 * each command is a channel on it. It connects on first use, sends keepalives, and reconnects
 * after the connection drops. Only failures to get a connection or to open a channel are
 * retried; a command that started is never run twice.
 */
import * as net from 'node:net';
import pLimit, { type LimitFunction } from 'p-limit';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { ConnectionLostError, NodeUnreachableError, V2vError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { formatSshTarget, type SshTarget } from '../node-spec.js';
import type { HostKeyVerifier } from './host-keys.js';
import { lockedKeyError, type SshAuth } from './ssh-auth.js';

export type { SshAuth } from './ssh-auth.js';

export interface SshConnectionOptions {
  /** Give up connecting (TCP + handshake + auth) after this long. */
  connectTimeoutMs: number;
  /** Send a keepalive after this much silence; 0 disables. */
  keepaliveIntervalMs: number;
  /** Drop the connection after this many unanswered keepalives. */
  keepaliveCountMax: number;
  /**
   * Channels open at once on the connection. OpenSSH's sshd allows 10 sessions per connection
   * (MaxSessions); one is kept free so a timed-out command can always be killed.
   */
  maxChannels: number;
  /** How often a failure to connect or to open a channel is retried on a fresh connection. */
  retries: number;
}

export const DEFAULT_SSH_OPTIONS: SshConnectionOptions = {
  connectTimeoutMs: 20_000,
  keepaliveIntervalMs: 15_000,
  keepaliveCountMax: 3,
  maxChannels: 9,
  retries: 2,
};

/** Host key algorithms ssh2 can negotiate, per key type found in known_hosts. */
const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

type LostListener = (error: ConnectionLostError) => void;

export class SshConnection {
  /** `ssh://user@host:port`. */
  readonly name: string;
  /** Connections established so far (1 while the first one lives). */
  connects = 0;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private readonly lostListeners = new Set<LostListener>();
  private readonly limit: LimitFunction;

  constructor(
    readonly target: SshTarget,
    private readonly auth: SshAuth,
    private readonly verifier: HostKeyVerifier,
    private readonly options: SshConnectionOptions = DEFAULT_SSH_OPTIONS,
    private readonly log?: Logger | undefined,
  ) {
    this.name = formatSshTarget(target);
    this.limit = pLimit(Math.max(1, options.maxChannels));
  }

  /** True while a connection is up. */
  get isConnected(): boolean {
    return this.client !== undefined;
  }

  /** Runs `fn` while holding one of the connection's channel slots. */
  withSlot<T>(fn: () => Promise<T>): Promise<T> {
    return this.limit(fn);
  }

  /** Calls `listener` if the connection drops; returns the function that unsubscribes. */
  onLost(listener: LostListener): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Opens an exec channel running `command` (a shell command line built by quoteArgv). */
  exec(command: string): Promise<ClientChannel> {
    return this.withRetry(
      (client) =>
        new Promise((resolve, reject) => {
          client.exec(command, (err, channel) => (err ? reject(err) : resolve(channel)));
        }),
    );
  }

  /** Opens an SFTP session. */
  sftp(): Promise<SFTPWrapper> {
    return this.withRetry(
      (client) =>
        new Promise((resolve, reject) => {
          client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp)));
        }),
    );
  }

  /** Closes the connection; the next use connects again. */
  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      client.end();
      setTimeout(resolve, 2000).unref();
    });
  }

  private async withRetry<T>(open: (client: Client) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 250 * attempt));
      let client: Client;
      try {
        client = await this.connected();
      } catch (e) {
        // A refused or dropped connection may be a restarting sshd: try again. A host key or
        // login problem will not go away by retrying.
        lastError = e;
        if (!(e instanceof NodeUnreachableError) || !e.retryable) throw e;
        continue;
      }
      try {
        return await open(client);
      } catch (e) {
        lastError = e;
        // The connection died under us: nothing ran yet, so a fresh connection may try again.
        // Anything else (e.g. the server refusing the channel) is final.
        if (this.client === client && !isConnectionFailure(e)) throw this.channelError(e);
        this.drop(client);
      }
    }
    throw this.channelError(lastError);
  }

  private connected(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /**
   * Opens the TCP connection ourselves, to turn off Nagle's algorithm: ssh2 does not, and each
   * command's small packets then wait out the peer's delayed ACK (~40 ms a command).
   */
  private openSocket(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: this.target.host, port: this.target.port });
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(
          this.unreachable(Object.assign(new Error('timed out'), { level: 'client-timeout' })),
        );
      }, this.options.connectTimeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(sock);
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(this.unreachable(e));
      });
    });
  }

  private async connect(): Promise<Client> {
    const knownTypes = await this.verifier.knownKeyTypes();
    const sock = await this.openSocket();
    const preferred = knownTypes.flatMap((t) => HOST_KEY_ALGORITHMS[t] ?? []);
    let verifyError: V2vError | undefined;
    const client = new Client();
    const auth = this.authSteps();
    const config: ConnectConfig = {
      sock,
      username: this.target.user,
      readyTimeout: this.options.connectTimeoutMs,
      keepaliveInterval: this.options.keepaliveIntervalMs,
      keepaliveCountMax: this.options.keepaliveCountMax,
      authHandler: auth.next,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        this.verifier.verify(key).then(
          () => verify(true),
          (e: unknown) => {
            verifyError =
              e instanceof V2vError ? e : new NodeUnreachableError(this.name, String(e));
            verify(false);
          },
        );
      },
      ...(preferred.length ? { algorithms: { serverHostKey: { prepend: preferred } } } : {}),
    } as ConnectConfig;

    return new Promise<Client>((resolve, reject) => {
      let ready = false;
      client.on('error', (e: Error & { level?: string }) => {
        // An agent that is gone or refuses to sign: ssh2 goes on with the next way to log in.
        if (e.level === 'agent') {
          this.log?.debug(`${this.name}: SSH agent: ${e.message}`);
          return;
        }
        if (!ready) reject(verifyError ?? this.unreachable(e));
        // After `ready`, an error is always followed by `close`, handled below.
      });
      client.once('ready', () => {
        ready = true;
        this.log?.debug(`${this.name}: logged in as ${this.target.user} with ${auth.current()}`);
        this.client = client;
        this.connects++;
        resolve(client);
      });
      client.once('close', () => {
        if (!ready) {
          reject(
            verifyError ??
              new NodeUnreachableError(
                this.name,
                `${this.name} closed the connection during the handshake`,
                {
                  retryable: true,
                },
              ),
          );
          return;
        }
        this.drop(client);
      });
      client.connect(config);
    });
  }

  /**
   * The ways to log in, in OpenSSH's order (agent keys, then key files), for ssh2's
   * `authHandler`, which asks for the next one after each failure.
   */
  private authSteps(): {
    next: NonNullable<ConnectConfig['authHandler']>;
    current: () => string;
  } {
    const username = this.target.user;
    const steps: Array<{ label: string; method: Record<string, unknown> }> = [];
    if (this.auth.agent) {
      steps.push({
        label: 'a key of the SSH agent',
        method: { type: 'agent', username, agent: this.auth.agent },
      });
    }
    for (const k of this.auth.keys) {
      steps.push({ label: `key ${k.file}`, method: { type: 'publickey', username, key: k.key } });
    }
    let current = 'nothing';
    const next = () => {
      const step = steps.shift();
      if (!step) return false;
      current = step.label;
      this.log?.debug(`${this.name}: trying ${step.label}`);
      return step.method;
    };
    return {
      next: next as unknown as NonNullable<ConnectConfig['authHandler']>,
      current: () => current,
    };
  }

  /** Forgets a dead client and tells everyone waiting on it. */
  private drop(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end();
    const lost = new ConnectionLostError(this.name, undefined);
    for (const listener of [...this.lostListeners]) listener(lost);
  }

  private unreachable(e: Error & { code?: string; level?: string }): V2vError {
    const n = this.name;
    if (e.code === 'ECONNREFUSED') {
      return new NodeUnreachableError(n, `cannot connect to ${n}: connection refused`, {
        hint: 'check that sshd runs on that host and port',
        retryable: true,
        cause: e,
      });
    }
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
      return new NodeUnreachableError(n, `cannot connect to ${n}: host name not found`, {
        cause: e,
      });
    }
    if (e.level === 'client-authentication') {
      // A key we could not unlock may be the one the server wants: say so, not "refused".
      const locked = this.auth.locked[0];
      if (locked !== undefined) {
        return lockedKeyError(locked, locked === this.auth.identity, !!this.auth.agent);
      }
      const tried = [
        ...(this.auth.agent ? ['the SSH agent'] : []),
        ...this.auth.keys.map((k) => k.file),
      ].join(', ');
      return new NodeUnreachableError(
        n,
        `cannot log in to ${n} as ${this.target.user}: the server refused the key` +
          (tried ? ` (tried ${tried})` : ''),
        {
          hint: this.auth.identity
            ? 'check that the --identity key is in the authorized_keys of that user'
            : 'give a key with --identity FILE, or start an SSH agent with the key loaded',
          cause: e,
        },
      );
    }
    if (e.level === 'client-timeout' || /timed out/i.test(e.message)) {
      return new NodeUnreachableError(n, `cannot connect to ${n}: timed out`, {
        hint: 'check the host name, the port and any firewall between',
        cause: e,
      });
    }
    return new NodeUnreachableError(n, `cannot connect to ${n}: ${e.message}`, { cause: e });
  }

  private channelError(e: unknown): V2vError {
    if (e instanceof V2vError) return e;
    const message = e instanceof Error ? e.message : String(e);
    if (isConnectionFailure(e)) return new ConnectionLostError(this.name, undefined, { cause: e });
    return new NodeUnreachableError(this.name, `${this.name} refused a channel: ${message}`, {
      hint: /prohibited/i.test(message)
        ? "the server's MaxSessions is lower than v2v-load's channel limit"
        : undefined,
      cause: e,
    });
  }
}

function isConnectionFailure(e: unknown): boolean {
  if (e instanceof ConnectionLostError) return true;
  const message = e instanceof Error ? e.message : String(e);
  return /not connected|no response|connection (lost|closed|reset)|ECONNRESET|EPIPE|socket/i.test(
    message,
  );
}
