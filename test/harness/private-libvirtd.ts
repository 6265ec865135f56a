/**
 * A libvirtd (with its virtlogd) of the test's own, so a test may restart it without touching
 * the machine's: both run in a private mount namespace where /run/libvirt, /var/lib/libvirt,
 * /var/cache/libvirt, /var/log/libvirt and /etc/libvirt are directories of the test (a copy of
 * the machine's configuration files, no domains, no networks), and libvirtd's sockets are in
 * the test's directory: `qemu:///system?socket=DIR/sock/libvirt-sock`. A restart kills libvirtd
 * only and starts it again in the same namespace (virtlogd keeps it alive), so running domains
 * are picked up again, as on a real host. Image paths outside those directories are the
 * machine's own.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface PrivateLibvirtd {
  dir: string;
  /** The URI to give --connect. */
  uri: string;
  libvirtdPid(): Promise<number | undefined>;
  /** Kills libvirtd (SIGTERM) and starts it again in the same namespace. */
  restart(): Promise<void>;
  /** Kills libvirtd (SIGTERM) only: its clients find it unreachable until `start`. */
  kill(): Promise<void>;
  /** Starts the killed libvirtd again in the same namespace and waits until it answers. */
  start(): Promise<void>;
  /** Destroys its domains, stops both daemons, removes the directory. */
  stop(): Promise<void>;
}

async function pidOf(file: string): Promise<number | undefined> {
  const t = await fs.readFile(file, 'utf8').catch(() => '');
  const pid = Number(t.trim());
  if (!pid) return undefined;
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat && !/^\d+ \(.*\) [ZX]/.test(stat) ? pid : undefined;
}

async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`private libvirtd: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startPrivateLibvirtd(): Promise<PrivateLibvirtd> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-libvirtd-'));
  await fs.chmod(dir, 0o755);
  for (const d of ['etc/qemu/networks', 'lib', 'cache', 'log', 'sock']) {
    await fs.mkdir(path.join(dir, d), { recursive: true });
  }
  for (const f of await fs.readdir('/etc/libvirt')) {
    if (f.endsWith('.conf')) await fs.copyFile(`/etc/libvirt/${f}`, path.join(dir, 'etc', f));
  }
  await fs.appendFile(path.join(dir, 'etc/libvirtd.conf'), `\nunix_sock_dir = "${dir}/sock"\n`);
  const libvirtdPidFile = path.join(dir, 'libvirtd.pid');
  const virtlogdPidFile = path.join(dir, 'virtlogd.pid');
  const script = path.join(dir, 'start.sh');
  await fs.writeFile(
    script,
    [
      'set -e',
      'mount --make-rprivate /',
      `mount --bind ${dir}/etc /etc/libvirt`,
      'mount -t tmpfs tmpfs /run/libvirt',
      `mount --bind ${dir}/lib /var/lib/libvirt`,
      `mount --bind ${dir}/cache /var/cache/libvirt`,
      `mount --bind ${dir}/log /var/log/libvirt`,
      `virtlogd -d --pid-file=${virtlogdPidFile}`,
      `libvirtd -d --pid-file=${libvirtdPidFile}`,
      '',
    ].join('\n'),
  );
  const uri = `qemu:///system?socket=${dir}/sock/libvirt-sock`;
  const answers = async () =>
    exec('virsh', ['-c', uri, 'version'], { timeout: 120_000 }).then(
      () => true,
      () => false,
    );
  await exec('unshare', ['-m', 'bash', script]);
  await waitFor(answers, 120_000, 'libvirtd to answer');

  const lv: PrivateLibvirtd = {
    dir,
    uri,
    libvirtdPid: () => pidOf(libvirtdPidFile),
    async restart() {
      await lv.kill();
      await lv.start();
    },
    async kill() {
      const pid = await pidOf(libvirtdPidFile);
      if (pid) {
        process.kill(pid, 'SIGTERM');
        await waitFor(async () => !(await pidOf(libvirtdPidFile)), 30_000, 'libvirtd to stop');
      }
    },
    async start() {
      const anchor = await pidOf(virtlogdPidFile);
      if (!anchor) throw new Error('private libvirtd: its virtlogd is gone');
      await fs.rm(libvirtdPidFile, { force: true });
      await exec('nsenter', [
        '-t',
        String(anchor),
        '-m',
        'libvirtd',
        '-d',
        `--pid-file=${libvirtdPidFile}`,
      ]);
      await waitFor(answers, 120_000, 'libvirtd to answer again');
    },
    async stop() {
      const names = await exec('virsh', ['-c', uri, 'list', '--all', '--name']).then(
        (r) => r.stdout.split('\n').filter(Boolean),
        () => [] as string[],
      );
      for (const n of names) {
        await exec('virsh', ['-c', uri, 'destroy', n]).catch(() => {});
        await exec('virsh', ['-c', uri, 'undefine', n, '--nvram']).catch(() => {});
      }
      for (const f of [libvirtdPidFile, virtlogdPidFile]) {
        const pid = await pidOf(f);
        if (pid) process.kill(pid, 'SIGTERM');
        await waitFor(async () => !(await pidOf(f)), 30_000, `${f} to stop`).catch(() => {});
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return lv;
}
