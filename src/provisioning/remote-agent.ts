/**
 * A command agent on an SSH node, so that a load's commands do not each pay for the remote
 * login shell's start-up (sshd hands every command to the user's shell, and root's may source
 * a heavy ~/.bashrc: ~90 ms on an idle machine, seconds on a loaded one).
 *
 * One `python3 -c AGENT` runs on the node for the whole run (one shell start); each command is
 * a JSON line {id, argv, stdin, env, timeout} on its stdin, run WITHOUT a shell (an argv, as
 * everywhere), and its answer a JSON line {id, code, signal, out, err, timedOut} on stdout.
 * Commands run concurrently; a timeout or an abort kills the command's process group.
 * File operations still go over SFTP (no shell either). When the node has no python3, or the
 * agent dies, every command runs directly as before.
 */
import { constants } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import {
  CommandError,
  CommandNotFoundError,
  type CommandOutcome,
  ConnectionLostError,
} from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Node, RunOptions, RunResult } from '../node/node.js';

/** The agent (a fixed program: nothing of a request becomes code or a shell word). */
export const AGENT_PY = String.raw`
import base64, json, os, signal, subprocess, sys, threading
lock = threading.Lock()
procs = {}
def send(o):
    data = (json.dumps(o) + "\n").encode()
    with lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
def b64(b):
    return base64.b64encode(b).decode()
def kill(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
def run(req):
    rid = req["id"]
    env = dict(os.environ)
    env.update(req.get("env") or {})
    try:
        p = subprocess.Popen(req["argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, start_new_session=True)
    except FileNotFoundError as e:
        send({"id": rid, "notFound": True, "err": b64(str(e).encode())})
        return
    except OSError as e:
        send({"id": rid, "code": 126, "out": "", "err": b64(str(e).encode())})
        return
    procs[rid] = p
    timed = False
    try:
        out, err = p.communicate(base64.b64decode(req.get("stdin") or ""), timeout=req.get("timeout"))
    except subprocess.TimeoutExpired:
        timed = True
        kill(p)
        out, err = p.communicate()
    procs.pop(rid, None)
    c = p.returncode
    send({"id": rid, "code": c if c >= 0 else None, "signal": -c if c < 0 else None,
          "out": b64(out), "err": b64(err), "timedOut": timed})
send({"ready": True})
for line in iter(sys.stdin.buffer.readline, b""):
    req = json.loads(line)
    if "kill" in req:
        p = procs.get(req["kill"])
        if p:
            kill(p)
        continue
    threading.Thread(target=run, args=(req,), daemon=True).start()
for p in list(procs.values()):
    kill(p)
`;

interface Answer {
  id?: number;
  ready?: boolean;
  notFound?: boolean;
  code?: number | null;
  signal?: number | null;
  out?: string;
  err?: string;
  timedOut?: boolean;
}

interface Pending {
  resolve(a: Answer): void;
  reject(e: unknown): void;
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, n]) => [n as number, name]),
);

/** A node whose commands run through one agent process (see the module comment). */
export class AgentNode implements Node {
  readonly isLocal: boolean;
  readonly name: string;
  private agent: Promise<PassThrough | undefined> | undefined;
  private dead = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private ended: Promise<unknown> | undefined;
  /** Remote commands that ran through the agent (each saved a shell start). */
  agentRuns = 0;

  constructor(
    private readonly inner: Node,
    private readonly log?: Logger,
  ) {
    this.isLocal = inner.isLocal;
    this.name = inner.name;
  }

  private start(): Promise<PassThrough | undefined> {
    this.agent ??= new Promise((resolve) => {
      const input = new PassThrough();
      let buf = '';
      let ready = false;
      const onLine = (line: string) => {
        let a: Answer;
        try {
          a = JSON.parse(line) as Answer;
        } catch {
          return;
        }
        if (a.ready) {
          ready = true;
          resolve(input);
          return;
        }
        const p = a.id === undefined ? undefined : this.pending.get(a.id);
        if (p && a.id !== undefined) {
          this.pending.delete(a.id);
          p.resolve(a);
        }
      };
      this.ended = this.inner
        .run(['python3', '-c', AGENT_PY], {
          stdin: input,
          reject: false,
          onStdout: (chunk) => {
            buf += chunk.toString('utf8');
            for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
              onLine(buf.slice(0, i));
              buf = buf.slice(i + 1);
            }
          },
        })
        .then(
          (r) => r.stderr,
          (e: unknown) => String(e),
        )
        .then((why) => {
          this.dead = true;
          if (!ready) {
            this.log?.debug(
              `${this.name}: no command agent (${String(why).trim()}); running commands directly`,
            );
            resolve(undefined);
          }
          for (const [id, p] of this.pending) {
            this.pending.delete(id);
            p.reject(new ConnectionLostError(this.name, undefined));
          }
        });
    });
    return this.agent;
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    // Streams and progress callbacks need a channel of their own: those run directly.
    if (this.dead || options.stdin instanceof Readable || options.onStdout || options.onStderr) {
      return this.inner.run(argv, options);
    }
    const input = await this.start();
    if (!input || this.dead) return this.inner.run(argv, options);
    const id = this.nextId++;
    const started = performance.now();
    const stdin = options.stdin === undefined ? '' : Buffer.from(options.stdin).toString('base64');
    const answer = new Promise<Answer>((resolve, reject) =>
      this.pending.set(id, { resolve, reject }),
    );
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      input.write(`${JSON.stringify({ kill: id })}\n`);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    input.write(
      `${JSON.stringify({
        id,
        argv,
        stdin,
        env: options.env ?? {},
        timeout: options.timeoutMs === undefined ? null : options.timeoutMs / 1000,
      })}\n`,
    );
    this.agentRuns++;
    let a: Answer;
    try {
      a = await answer;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    const stdoutBytes = Buffer.from(a.out ?? '', 'base64');
    const outcome: CommandOutcome = {
      argv,
      node: this.name,
      exitCode: a.code ?? undefined,
      signal: a.signal ? (SIGNAL_NAMES.get(a.signal) ?? String(a.signal)) : undefined,
      stdout: stdoutBytes.toString('utf8'),
      stderr: Buffer.from(a.err ?? '', 'base64').toString('utf8'),
      durationMs: Math.round(performance.now() - started),
      timedOut: !!a.timedOut,
      aborted,
    };
    this.log?.debug(
      `run on ${this.name} (agent): ${argv.join(' ')}: exit ${outcome.exitCode ?? outcome.signal} (${outcome.durationMs} ms)`,
    );
    if (a.notFound) throw new CommandNotFoundError(outcome);
    if (outcome.timedOut || outcome.aborted || outcome.signal) throw new CommandError(outcome);
    if (outcome.exitCode !== 0 && options.reject !== false) throw new CommandError(outcome);
    return { ...outcome, stdoutBytes };
  }

  /** Ends the agent (its commands still running are killed) and waits for it. */
  async stop(): Promise<void> {
    const input = await this.agent;
    input?.end();
    await this.ended;
  }

  readFile(p: string) {
    return this.inner.readFile(p);
  }
  readFileRange(p: string, offset: number, length: number) {
    return this.inner.readFileRange(p, offset, length);
  }
  writeFileAtomic(p: string, data: string | Uint8Array, options?: { mode?: number }) {
    return this.inner.writeFileAtomic(p, data, options);
  }
  stat(p: string) {
    return this.inner.stat(p);
  }
  list(dir: string) {
    return this.inner.list(dir);
  }
  rename(from: string, to: string, options?: { noReplace?: boolean }) {
    return this.inner.rename(from, to, options);
  }
  remove(p: string, options?: { recursive?: boolean }) {
    return this.inner.remove(p, options);
  }
  mkdir(p: string, options?: { recursive?: boolean; mode?: number }) {
    return this.inner.mkdir(p, options);
  }
  upload(localPath: string, nodePath: string) {
    return this.inner.upload(localPath, nodePath);
  }
  download(nodePath: string, localPath: string) {
    return this.inner.download(nodePath, localPath);
  }
  async close(): Promise<void> {
    await this.stop();
  }
}
