/**
 * A private sshd on 127.0.0.1 for tests and benchmarks: its own host key, client key,
 * authorized_keys and known_hosts, in a directory of its own (see ../shared/ENVIRONMENT.md).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** What tests need to reach a test sshd (plain data, so vitest can `provide` it). */
export interface SshdInfo {
  port: number;
  /** `ssh://root@127.0.0.1:PORT` */
  url: string;
  dir: string;
  /** Client private key, in authorized_keys. */
  identity: string;
  /** known_hosts holding this sshd's host key as `[127.0.0.1]:PORT`. */
  knownHosts: string;
  /** `SHA256:...` of the host key. */
  hostKeyFingerprint: string;
  /** The host public key line (`type base64`). */
  hostKeyLine: string;
  configFile: string;
  pidFile: string;
  logFile: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitUntil(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function keygen(file: string, comment: string): Promise<void> {
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/** Creates keys and config in a new directory and starts sshd. */
export async function startSshd(options: { dir?: string } = {}): Promise<SshdInfo> {
  const dir = options.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-sshd-')));
  await fs.mkdir('/run/sshd', { recursive: true });
  const hostKey = path.join(dir, 'host_ed25519');
  const identity = path.join(dir, 'client_ed25519');
  await keygen(hostKey, 'v2v-load-test-host');
  await keygen(identity, 'v2v-load-test-client');
  await fs.copyFile(`${identity}.pub`, path.join(dir, 'authorized_keys'));
  const port = await freePort();
  const hostPub = (await fs.readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/);
  const hostKeyLine = `${hostPub[0]} ${hostPub[1]}`;
  const { stdout: fp } = await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]);
  const info: SshdInfo = {
    port,
    url: `ssh://root@127.0.0.1:${port}`,
    dir,
    identity,
    knownHosts: path.join(dir, 'known_hosts'),
    hostKeyFingerprint: fp.split(/\s+/)[1] ?? '',
    hostKeyLine,
    configFile: path.join(dir, 'sshd_config'),
    pidFile: path.join(dir, 'sshd.pid'),
    logFile: path.join(dir, 'sshd.log'),
  };
  await fs.writeFile(info.knownHosts, `[127.0.0.1]:${port} ${hostKeyLine}\n`);
  await fs.writeFile(
    info.configFile,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${info.pidFile}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 100:30:200',
      'Subsystem sftp internal-sftp',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  await runSshd(info);
  return info;
}

/** Starts sshd from an existing config (also after {@link killSshd}, on the same port). */
export async function runSshd(info: SshdInfo): Promise<void> {
  await exec('/usr/sbin/sshd', ['-f', info.configFile, '-E', info.logFile]);
  await waitUntil(() => canConnect(info.port), 10_000, `sshd on port ${info.port}`);
}

async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function descendants(pid: number): Promise<number[]> {
  const all: number[] = [];
  for (const child of await childrenOf(pid)) {
    all.push(child, ...(await descendants(child)));
  }
  return all;
}

/** The sshd listener and every process serving its connections. */
export async function sshdProcesses(info: SshdInfo): Promise<number[]> {
  const pid = Number((await fs.readFile(info.pidFile, 'utf8')).trim());
  return [pid, ...(await descendants(pid))];
}

/** Kills sshd with SIGKILL: the listener and every connection it serves, as a crash would. */
export async function killSshd(info: SshdInfo): Promise<void> {
  for (const p of await sshdProcesses(info)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await waitUntil(async () => !(await canConnect(info.port)), 10_000, 'sshd to die');
}

/** Stops sshd (listener and connections) and removes its directory. */
export async function stopSshd(info: SshdInfo): Promise<void> {
  await killSshd(info).catch(() => {});
  await fs.rm(info.dir, { recursive: true, force: true });
}
