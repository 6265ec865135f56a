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
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NodeFactory } from '../src/node/node-factory.js';
import { type SshdInfo, startSshd, stopSshd } from '../test/harness/sshd.js';

const exec = promisify(execFile);
const N = Number(process.env.BENCH_N ?? 200);
const SH_USER = 'v2vbench';

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

/**
 * A system account with /bin/sh as its shell, password '*' (no password login, but not locked:
 * sshd without PAM refuses locked accounts even with a key). Returns whether this run made it.
 */
async function ensureShUser(): Promise<boolean> {
  const passwd = await fs.readFile('/etc/passwd', 'utf8');
  if (passwd.split('\n').some((l) => l.startsWith(`${SH_USER}:`))) return false;
  await exec('useradd', [
    '--system',
    '--password',
    '*',
    '--shell',
    '/bin/sh',
    '--home-dir',
    '/nonexistent',
    '--no-create-home',
    SH_USER,
  ]);
  return true;
}

export async function run(): Promise<void> {
  const info = await startSshd();
  const created = await ensureShUser();
  // sshd reads authorized_keys as the user logging in: let the service account read it.
  await fs.chmod(info.dir, 0o755);
  await fs.chmod(path.join(info.dir, 'authorized_keys'), 0o644);
  try {
    process.stderr.write(`ssh-roundtrip: ${N} commands each way against ${info.url}\n`);
    const root = await measure(info, 'root');
    const sh = await measure(info, SH_USER);
    console.log(
      JSON.stringify({
        bench: 'ssh-roundtrip',
        n: N,
        ...root,
        sh_user: sh,
      }),
    );
  } finally {
    if (created) await exec('userdel', [SH_USER]).catch(() => {});
    await stopSshd(info);
  }
}
