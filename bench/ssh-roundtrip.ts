/**
 * 200 small commands (`true`) over the pooled SSH node versus 200 spawns of `ssh host true`
 * (one process and one connection per command, as VCL does), against the same sshd, one run.
 *
 * Measured twice: as root (whose login shell on the host reads ~/.bashrc for every command,
 * pooled or not), and as a service account whose login shell is /bin/sh, which shows the cost
 * of the transport alone. The headline figures are root's.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NodeFactory } from '../src/node/node-factory.js';
import { type SshdInfo, startSshd, stopSshd } from '../test/harness/sshd.js';

const exec = promisify(execFile);
const N = Number(process.env.BENCH_N ?? 200);
const SH_USER = 'v2vbench';
/** Prefix of the service account's home directory, made in os.tmpdir() by each run. */
const HOME_PREFIX = 'v2v-load-bench-home-';

interface Figures {
  pooled_ops_per_s: number;
  spawn_ops_per_s: number;
  ratio: number;
}

async function pooled(info: SshdInfo, user: string): Promise<number> {
  const nodes = new NodeFactory();
  const t0 = performance.now();
  const node = await nodes.get({
    ssh: { user, host: '127.0.0.1', port: info.port },
    identity: info.identity,
    knownHosts: info.knownHosts,
  });
  for (let i = 0; i < N; i++) await node.run(['true']);
  const seconds = (performance.now() - t0) / 1000; // includes connecting once
  await nodes.closeAll();
  return N / seconds;
}

async function spawned(info: SshdInfo, user: string): Promise<number> {
  const argv = [
    '-F',
    '/dev/null',
    '-i',
    info.identity,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${info.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-p',
    String(info.port),
    `${user}@127.0.0.1`,
    'true',
  ];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await exec('ssh', argv);
  return N / ((performance.now() - t0) / 1000);
}

async function measure(info: SshdInfo, user: string): Promise<Figures> {
  const p = await pooled(info, user);
  const s = await spawned(info, user);
  const round = (x: number) => Math.round(x * 10) / 10;
  process.stderr.write(
    `${user}: pooled ${round(p)} ops/s (${(1000 / p).toFixed(1)} ms each), ` +
      `spawned ${round(s)} ops/s (${(1000 / s).toFixed(1)} ms each), ratio ${round(p / s)}\n`,
  );
  return { pooled_ops_per_s: round(p), spawn_ops_per_s: round(s), ratio: round(p / s) };
}

/** The /bin/sh account's line in /etc/passwd, if it exists (a leftover of an interrupted run). */
async function shUserLine(): Promise<string | undefined> {
  const passwd = await fs.readFile('/etc/passwd', 'utf8');
  return passwd.split('\n').find((l) => l.startsWith(`${SH_USER}:`));
}

/** Removes the account (even with sessions still open) and the home dir this run gave it. */
async function removeShUser(): Promise<void> {
  const line = await shUserLine();
  if (line === undefined) return;
  await exec('userdel', ['--force', SH_USER]).catch((e: unknown) => {
    process.stderr.write(`ssh-roundtrip: userdel ${SH_USER} failed: ${String(e)}\n`);
  });
  // Only a home this benchmark made (under the temp dir, named by it) is removed.
  const home = line.split(':')[5] ?? '';
  if (path.basename(home).startsWith(HOME_PREFIX) && path.dirname(home) === os.tmpdir()) {
    await fs.rm(home, { recursive: true, force: true });
  }
}

/**
 * A system account with /bin/sh as its shell and a real home directory (sshd refuses to run a
 * command, `true` included, when it cannot chdir to the home), password '*' (no password
 * login, but not locked: sshd without PAM refuses locked accounts even with a key). An account
 * left over from an interrupted run is removed first.
 */
async function createShUser(): Promise<void> {
  if ((await shUserLine()) !== undefined) {
    process.stderr.write(`ssh-roundtrip: removing ${SH_USER}, left over from an earlier run\n`);
    await removeShUser();
  }
  const home = await fs.mkdtemp(path.join(os.tmpdir(), HOME_PREFIX));
  await exec('useradd', [
    '--system',
    '--password',
    '*',
    '--shell',
    '/bin/sh',
    '--home-dir',
    home,
    '--no-create-home',
    SH_USER,
  ]);
  await exec('chown', [`${SH_USER}:`, home]);
}

/** What a run set up, undone once: at the end, on an error, or on SIGINT/SIGTERM. */
function cleanupOnce(steps: Array<() => Promise<void>>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => {
    done ??= (async () => {
      for (const step of steps) await step().catch(() => {});
    })();
    return done;
  };
}

export async function run(): Promise<void> {
  const steps: Array<() => Promise<void>> = [];
  const cleanup = cleanupOnce(steps);
  // Ctrl-C (or `timeout`) signals the whole process group, and tsx relays the signal once
  // more: the handler stays installed until the cleanup is done, so a second signal cannot
  // kill the process half way through it.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`ssh-roundtrip: ${signal}: cleaning up\n`);
    void cleanup().finally(() => {
      process.stderr.write('ssh-roundtrip: cleaned up\n');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const info = await startSshd();
    steps.push(() => stopSshd(info));
    steps.push(removeShUser);
    await createShUser();
    // sshd reads authorized_keys as the user logging in: let the service account read it.
    await fs.chmod(info.dir, 0o755);
    await fs.chmod(path.join(info.dir, 'authorized_keys'), 0o644);
    process.stderr.write(`ssh-roundtrip: ${N} commands each way against ${info.url}\n`);
    const root = await measure(info, 'root');
    // root's figures are the headline: print them even if the service account's run fails
    const sh = await measure(info, SH_USER).catch((e: unknown) => ({
      error: e instanceof Error ? e.message : String(e),
    }));
    console.log(JSON.stringify({ bench: 'ssh-roundtrip', n: N, ...root, sh_user: sh }));
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
