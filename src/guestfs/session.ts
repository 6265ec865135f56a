/**
 * One libguestfs appliance for a whole conversion, on the node that holds the disks. The
 * agent (agent-py.ts) runs as one command on the node; calls go over its stdin/stdout as JSON
 * lines, so a conversion pays one appliance launch and no process start per guest file.
 * Works the same on a local and an SSH node.
 */
import { PassThrough } from 'node:stream';
import { CommandError, V2vError, type V2vErrorOptions } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Node, RunResult } from '../node/node.js';
import { scratchName } from '../node/scratch.js';
import { AGENT_PY } from './agent-py.js';

/** The system Python, which has Debian's python3-guestfs (not a pyenv or venv python on PATH). */
export const AGENT_PYTHON = '/usr/bin/python3';

/** How long `accel: 'auto'` lets a KVM launch try before falling back to TCG. */
const KVM_TRIAL_MS = 60_000;

/** A libguestfs call failed, or the appliance could not start. */
export class GuestfsError extends V2vError {
  override readonly code: string = 'GUESTFS';
  constructor(
    readonly call: string,
    message: string,
    readonly errno = 0,
    options: V2vErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** A disk the appliance opens. */
export interface GuestfsDrive {
  path: string;
  format: string;
  readonly?: boolean;
}

export interface GuestfsOptions {
  /** Kills the agent (and so the appliance) when it aborts. */
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  /** Appliance memory in MiB (libguestfs default otherwise). */
  memsizeMiB?: number | undefined;
  /** Appliance vCPUs (default 1). More help parallel work inside the guest under TCG. */
  smp?: number | undefined;
  /**
   * kvm, tcg (LIBGUESTFS_BACKEND_SETTINGS=force_tcg), or auto (default): as the environment
   * says when it sets LIBGUESTFS_BACKEND_SETTINGS, else KVM and then TCG if KVM fails.
   */
  accel?: 'auto' | 'kvm' | 'tcg' | undefined;
  /** Extra environment for the agent, e.g. LIBGUESTFS_BACKEND_SETTINGS=force_tcg. */
  env?: Record<string, string> | undefined;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Pending {
  call: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** The libguestfs environment of this process, passed on to the node's agent. */
export function libguestfsEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('LIBGUESTFS_') && v !== undefined) env[k] = v;
  }
  return env;
}

function decode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Object.keys(o).length === 1 && typeof o.$b64 === 'string') {
      return Buffer.from(o.$b64, 'base64');
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, decode(x)]));
  }
  return v;
}

function encode(v: unknown): Json {
  if (v instanceof Uint8Array) return { $b64: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map(encode);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, encode(x)]),
    );
  }
  return v as Json;
}

export class GuestfsSession {
  private readonly stdin = new PassThrough();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buf = '';
  private exited: Error | undefined;
  private readonly done: Promise<RunResult | undefined>;
  private readyResolve!: () => void;
  private readonly ready: Promise<void>;
  /** Kills the agent (and its appliance) when a launch hangs. */
  private readonly kill = new AbortController();
  /** How the appliance runs: with KVM, or under TCG (software emulation). */
  accel: 'kvm' | 'tcg' = 'tcg';
  /** Milliseconds spent in each call name, for stage timings. */
  readonly timings = new Map<string, { count: number; ms: number }>();

  private constructor(
    readonly node: Node,
    private readonly opts: GuestfsOptions,
    /** The node's private directory holding the agent script. */
    private readonly agentDir: string,
  ) {
    this.ready = new Promise((r) => {
      this.readyResolve = r;
    });
    this.done = node
      .run([AGENT_PYTHON, `${agentDir}/v2v-load-guestfs-agent.py`], {
        stdin: this.stdin,
        env: { ...libguestfsEnv(), ...(opts.env ?? {}) },
        signal: opts.signal ? AbortSignal.any([opts.signal, this.kill.signal]) : this.kill.signal,
        onStdout: (chunk) => this.onData(chunk),
        onStderr: (chunk) => opts.log?.debug(`guestfs: ${chunk.toString().trimEnd()}`),
        maxBuffer: 1 << 20,
      })
      .then(
        (r) => {
          this.fail(new GuestfsError('agent', `the libguestfs agent on ${node.name} ended`));
          return r;
        },
        (e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          // The agent's source is its argv: say what went wrong, not the whole command.
          let why = err.message;
          if (e instanceof CommandError) {
            why =
              e.aborted || e.timedOut
                ? 'was stopped'
                : `exited (${e.signal ?? e.exitCode}): ${e.stderr.trim().split('\n').slice(-3).join(' | ')}`;
          }
          this.fail(
            new GuestfsError(
              'agent',
              `the libguestfs agent (${AGENT_PYTHON}) on ${node.name} ${why}`,
              0,
              {
                cause: err,
                hint: 'check python3-guestfs is installed on the node (v2v-load doctor)',
              },
            ),
          );
          return undefined;
        },
      );
  }

  /**
   * Starts the agent, adds the drives and launches the appliance.
   * @throws GuestfsError when the agent or the appliance cannot start
   */
  static async open(
    node: Node,
    drives: readonly GuestfsDrive[],
    opts: GuestfsOptions = {},
  ): Promise<GuestfsSession> {
    const accel = opts.accel ?? 'auto';
    // auto: the environment decides when it says (LIBGUESTFS_BACKEND_SETTINGS); otherwise KVM
    // first, then TCG when KVM does not launch (as `v2v-load doctor --accel auto` does).
    const attempts: ('kvm' | 'tcg' | 'env')[] =
      accel !== 'auto'
        ? [accel]
        : process.env.LIBGUESTFS_BACKEND_SETTINGS
          ? ['env']
          : ['kvm', 'tcg'];
    for (const [i, a] of attempts.entries()) {
      try {
        return await GuestfsSession.openWith(node, drives, opts, a);
      } catch (e) {
        if (i === attempts.length - 1 || !(e instanceof GuestfsError) || e.call !== 'launch')
          throw e;
        opts.log?.warn(
          `the libguestfs appliance did not launch with KVM (${e.message}); using TCG`,
        );
      }
    }
    throw new GuestfsError('launch', 'no acceleration to try');
  }

  private static async openWith(
    node: Node,
    drives: readonly GuestfsDrive[],
    opts: GuestfsOptions,
    accel: 'kvm' | 'tcg' | 'env',
  ): Promise<GuestfsSession> {
    const env: Record<string, string> =
      accel === 'env'
        ? {}
        : accel === 'tcg'
          ? { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' }
          : { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: '' };
    opts = { ...opts, env: { ...env, ...(opts.env ?? {}) } };
    // The agent script goes into a private directory on the node (not into argv: logs and ps
    // show a short command line).
    const dir = scratchName('/tmp/v2v-load-guestfs-');
    await node.mkdir(dir, { mode: 0o700 });
    try {
      await node.writeFileAtomic(`${dir}/v2v-load-guestfs-agent.py`, AGENT_PY, { mode: 0o600 });
    } catch (e) {
      await node.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    const s = new GuestfsSession(node, opts, dir);
    s.accel =
      accel === 'env'
        ? /force_tcg/.test(process.env.LIBGUESTFS_BACKEND_SETTINGS ?? '')
          ? 'tcg'
          : 'kvm'
        : accel;
    try {
      await Promise.race([
        s.ready,
        s.done.then(() => {
          throw s.exited ?? new GuestfsError('agent', 'the libguestfs agent ended at start');
        }),
      ]);
      // Python has read the script: nothing of the agent stays on the node's disk.
      await node.remove(dir, { recursive: true });
      if (opts.memsizeMiB) await s.call('set_memsize', opts.memsizeMiB);
      if (opts.smp) await s.call('set_smp', opts.smp);
      await s.call('set_network', false);
      for (const d of drives) {
        await s.call('add_drive_opts', d.path, {
          format: d.format,
          readonly: d.readonly ?? false,
        });
      }
      // A KVM that is there but does not work can hang the launch: bounded when KVM is only
      // being tried.
      const bound = accel === 'kvm' && (opts.accel ?? 'auto') === 'auto' ? KVM_TRIAL_MS : undefined;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          s.call('launch'),
          ...(bound
            ? [
                new Promise<never>((_, reject) => {
                  timer = setTimeout(() => {
                    s.kill.abort();
                    reject(
                      new GuestfsError('launch', `launch: no appliance after ${bound / 1000} s`),
                    );
                  }, bound);
                }),
              ]
            : []),
        ]);
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      await s.close().catch(() => {});
      throw e;
    }
    return s;
  }

  private onData(chunk: Buffer): void {
    this.buf += chunk.toString('utf8');
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      nl = this.buf.indexOf('\n');
      if (!line.trim()) continue;
      let msg: { id: number; ok?: unknown; err?: string; errno?: number };
      try {
        msg = JSON.parse(line);
      } catch {
        this.opts.log?.debug(`guestfs agent: ${line}`);
        continue;
      }
      if (msg.id === 0) {
        this.readyResolve();
        continue;
      }
      const p = this.pending.get(msg.id);
      if (!p) continue;
      this.pending.delete(msg.id);
      if (msg.err !== undefined) {
        p.reject(new GuestfsError(p.call, `${p.call}: ${msg.err}`, msg.errno ?? 0));
      } else p.resolve(decode(msg.ok));
    }
  }

  private fail(e: Error): void {
    this.exited ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /**
   * Calls a libguestfs API function by name (the Python binding's name, e.g. `inspect_os`,
   * `mount`, `read_file`, `command`). A trailing plain object is passed as keyword arguments.
   * Uint8Array arguments and bytes results travel as bytes.
   */
  call<T = unknown>(name: string, ...args: unknown[]): Promise<T> {
    if (this.exited) return Promise.reject(this.exited);
    let kw: Record<string, unknown> = {};
    const last = args[args.length - 1];
    if (last && typeof last === 'object' && !Array.isArray(last) && !(last instanceof Uint8Array)) {
      kw = last as Record<string, unknown>;
      args = args.slice(0, -1);
    }
    const id = this.nextId++;
    const started = performance.now();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        call: name,
        resolve: (v) => {
          this.time(name, started);
          resolve(v as T);
        },
        reject: (e) => {
          this.time(name, started);
          reject(e);
        },
      });
      this.stdin.write(`${JSON.stringify({ id, m: name, a: encode(args), k: encode(kw) })}\n`);
    });
  }

  private time(name: string, started: number): void {
    const t = this.timings.get(name) ?? { count: 0, ms: 0 };
    t.count++;
    t.ms += performance.now() - started;
    this.timings.set(name, t);
  }

  /** Shuts the appliance down and waits for the agent to end. Safe to call twice. */
  async close(): Promise<void> {
    if (!this.exited) {
      await this.call('__exit').catch(() => {});
    }
    this.stdin.end();
    await this.done;
    await this.node.remove(this.agentDir, { recursive: true }).catch(() => {});
  }
}
