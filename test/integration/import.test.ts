/**
 * `v2v-load import` end to end, on real libvirt, qemu-img, libguestfs and sshd:
 * - the realistic Debian VMware guest (debian-guest.ts) imported to the test sshd's node
 *   (qemu:///system there: this machine over SSH), its disk streamed and checksummed, its own
 *   console watched until the login prompt (the one Debian conversion of this file);
 * - the tiny VMware guest (tiny-vmware-guest.ts) imported on this machine while kill -9 hits
 *   each stage in turn: every next run removes what the dead one made (or, after a finished
 *   conversion, resumes after it), and the last one completes and boots, with nothing else left;
 * - a failure after the domain was started removes everything that import made.
 * The source is never written.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { placeFile } from '../../src/import/place.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import { CleanupStack } from '../../src/run/cleanup.js';
import { cli } from '../harness/cli.js';
import { type DebianGuest, debianGuest } from '../harness/debian-guest.js';
import { scratchOf } from '../harness/scratch.js';
import {
  TINY_VMW_LOGIN,
  type TinyVmwareGuest,
  tinyVmwareGuest,
} from '../harness/tiny-vmware-guest.js';

const exec = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/v2v-load.js');
const URI = 'qemu:///system';
const STAGING = '/var/tmp/v2v-load-import';

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.open(file);
  try {
    for await (const chunk of fh.createReadStream()) h.update(chunk);
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

const virsh = (...args: string[]) => exec('virsh', ['-c', URI, ...args]).then((r) => r.stdout);

async function domainNames(): Promise<string[]> {
  return (await virsh('list', '--all', '--name')).split('\n').filter(Boolean);
}

async function removeDomain(name: string): Promise<void> {
  await virsh('destroy', name).catch(() => {});
  await virsh('undefine', name, '--nvram').catch(() => {});
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: Record<string, unknown>[];
}

/** Runs the built CLI; with `killAt`, SIGKILLs it as soon as that import stage starts. */
function runCli(
  args: string[],
  killAt?: string,
): Promise<Run & { killed: boolean; pid: number | undefined }> {
  return new Promise((resolve) => {
    const child = spawn('node', [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (
        killAt &&
        !killed &&
        stdout.includes(`"event":"stage","stage":"${killAt}","state":"start"`)
      ) {
        killed = child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('exit', (status, signal) => {
      const events = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ status, signal, stdout, stderr, events, killed, pid: child.pid });
    });
  });
}

let work: string;
let tiny: TinyVmwareGuest;
let debian: DebianGuest;

beforeAll(async () => {
  work = await fs.mkdtemp('/var/tmp/v2v-load-import-test-');
  await fs.chmod(work, 0o755);
  [tiny, debian] = await Promise.all([tinyVmwareGuest(), debianGuest('base')]);
}, 1_800_000);

afterAll(async () => {
  for (const n of await domainNames()) if (n.startsWith('v2vt-')) await removeDomain(n);
  await fs.rm(work, { recursive: true, force: true });
});

async function pool(name: string): Promise<string> {
  const d = path.join(work, name);
  await fs.mkdir(d, { mode: 0o755 });
  return d;
}

describe('import on this machine: kill -9 at each stage, then a rerun completes', () => {
  it('every rerun cleans up after the dead one; the last boots; nothing else is left', async () => {
    const name = 'v2vt-kill';
    const dir = await pool('kill');
    const before = await sha256(tiny.vmdk);
    const args = [
      'import',
      tiny.vmx,
      '--name',
      name,
      '--pool',
      dir,
      '--domain-type',
      'qemu',
      '--verify-boot',
      '--verify-timeout',
      '300',
      '--json',
    ];
    const record = `.${name}.v2v-load-import`;
    const killedPids: number[] = [];
    for (const stage of ['convert', 'place', 'define', 'start', 'verify-boot']) {
      const r = await runCli(args, stage);
      if (r.pid) killedPids.push(r.pid);
      expect(r.killed, `${stage}: ${r.stderr}`).toBe(true);
      expect(r.signal).toBe('SIGKILL');
      // The dead run's record is there for the next one to find.
      expect(await fs.readdir(dir), stage).toContain(record);
      if (stage === 'start' || stage === 'verify-boot') {
        expect(await domainNames(), stage).toContain(name);
      }
    }
    const r = await runCli(args);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/is gone; cleaning up after it/);
    const result = r.events.find((e) => e.event === 'result') as {
      state: string;
      resumed: boolean;
      verify: { booted: boolean; matched: string };
      disks: { path: string }[];
      xmlPath: string;
      consoleLog: string;
    };
    expect(result.state).toBe('running');
    expect(result.verify.booted).toBe(true);
    expect(result.verify.matched).toBe(TINY_VMW_LOGIN.trim());
    // Killed after its conversion had finished: the conversion was reused, not redone.
    expect(result.resumed).toBe(true);
    expect(r.events.some((e) => e.event === 'convert-stage')).toBe(false);
    // Exactly the import's files: no record, no temporary file, no converter leftovers.
    expect((await fs.readdir(dir)).sort()).toEqual(
      [`${name}-console.log`, `${name}-sda.qcow2`, `${name}.xml`].sort(),
    );
    expect((await domainNames()).filter((n) => n === name)).toHaveLength(1);
    // No scratch folder of a killed run is left in /var/tmp or /tmp (the rerun sweeps them).
    expect(await scratchOf(killedPids)).toEqual([]);
    const xml = await virsh('dumpxml', name);
    expect(xml).toContain(`<source file='${dir}/${name}-sda.qcow2'`);
    expect(xml).toContain(`<log file='${dir}/${name}-console.log' append='on'/>`);
    expect(await fs.readFile(result.consoleLog, 'utf8')).toContain(TINY_VMW_LOGIN);
    expect(await sha256(tiny.vmdk)).toBe(before);
    await removeDomain(name);
  });

  it('a failure after the start removes the domain and every file of the import', async () => {
    const name = 'v2vt-fail';
    const dir = await pool('fail');
    // The boot check cannot succeed within 1 s: the import fails after its conversion, define
    // and start.
    const r = await cli(
      'import',
      tiny.vmx,
      '--name',
      name,
      '--pool',
      dir,
      '--domain-type',
      'qemu',
      '--verify-boot',
      '--verify-timeout',
      '1',
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(
      `${name} did not boot on local: no login prompt on the console within 1 s`,
    );
    expect(r.stderr).toContain('the import was removed');
    expect(await domainNames()).not.toContain(name);
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe('import to the test sshd node (qemu:///system there)', () => {
  it('places a file with one streamed copy, checksummed on both ends', async () => {
    const sshd = inject('sshd');
    const nodes = new NodeFactory();
    const cleanup = new CleanupStack();
    try {
      const node = await nodes.get({
        ssh: { user: 'root', host: '127.0.0.1', port: sshd.port },
        identity: sshd.identity,
        knownHosts: sshd.knownHosts,
      });
      const dir = await pool('place');
      const src = path.join(work, 'place-src.bin');
      await fs.writeFile(src, randomBytes(9 * 1024 * 1024 + 123));
      const seen: number[] = [];
      const placed = await placeFile(node, src, path.join(dir, 'disk.qcow2'), {
        cleanup,
        onProgress: (p) => seen.push(p.percent),
      });
      expect(placed.sha256).toBe(await sha256(src));
      expect(await sha256(path.join(dir, 'disk.qcow2'))).toBe(placed.sha256);
      expect(placed.bytes).toBe(9 * 1024 * 1024 + 123);
      expect(seen.at(-1)).toBe(100);
      expect(cleanup.size).toBe(0);
      // Never over an existing file: the partial copy is removed, the file left alone.
      await expect(placeFile(node, src, path.join(dir, 'disk.qcow2'), { cleanup })).rejects.toThrow(
        /exists|EEXIST/,
      );
      await cleanup.run();
      expect(await fs.readdir(dir)).toEqual(['disk.qcow2']);
    } finally {
      await nodes.closeAll();
    }
  });

  it('imports the Debian VMware guest: disk streamed and checksummed, its console shows a login prompt', async () => {
    const sshd = inject('sshd');
    const name = 'v2vt-debian';
    const dir = await pool('remote');
    const net = `v2vt-iso-${process.pid}`;
    await exec('bash', [
      '-c',
      'f=$(mktemp) && printf "%s" "$1" > "$f" && virsh -c qemu:///system net-create "$f" && rm -f "$f"',
      'net',
      `<network><name>${net}</name><bridge name='v2vt${process.pid % 10000}' stp='off'/><dns enable='no'/></network>`,
    ]);
    const before = await sha256(debian.disk);
    try {
      const r = await cli(
        'import',
        debian.vmx as string,
        '--host',
        sshd.url,
        '--identity',
        sshd.identity,
        '--known-hosts',
        sshd.knownHosts,
        '--connect',
        URI,
        '--pool',
        dir,
        '--name',
        name,
        '--network',
        net,
        '--domain-type',
        'qemu',
        '--verify-boot',
        '--verify-timeout',
        '900',
        '--json',
      );
      expect(r.status, r.stderr).toBe(0);
      const result = JSON.parse(
        r.stdout.split('\n').find((l) => l.includes('"event":"result"')) as string,
      ) as {
        node: string;
        state: string;
        disks: { path: string; bytes: number; sha256: string }[];
        verify: { booted: boolean; matched: string };
        stages: Record<string, number>;
        guest: { distro: string };
      };
      expect(result.node).toBe(sshd.url);
      expect(result.state).toBe('running');
      expect(result.verify.booted).toBe(true);
      // The guest's userspace: getty's login prompt, or systemd's multi-user target before it.
      expect(result.verify.matched).toMatch(/ login:$|^Reached target .*Multi-User System$/);
      expect(result.guest.distro).toBe('debian');
      expect(Object.keys(result.stages)).toEqual([
        'prepare',
        'convert',
        'place',
        'define',
        'start',
        'verify-boot',
      ]);
      const [disk] = result.disks;
      expect(disk?.path).toBe(`${dir}/${name}-sda.qcow2`);
      // The guest runs and writes its disk: the checksum is the one both ends agreed on.
      expect(disk?.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(disk?.bytes).toBeGreaterThan(100 * 1024 * 1024);
      // Progress events of the streamed copy, ending at 100 %.
      const copies = r.stdout
        .split('\n')
        .filter((l) => l.includes('"event":"progress"') && l.includes('"copy":"place"'));
      expect(copies.at(-1)).toContain('"percent":100');
      expect((await fs.readdir(dir)).sort()).toEqual(
        [`${name}-console.log`, `${name}-sda.qcow2`, `${name}.xml`].sort(),
      );
      // The staging copy on the converting machine is gone.
      const staged = await fs.readdir(STAGING).catch(() => [] as string[]);
      expect(staged.filter((d) => d.startsWith(`${name}-`))).toEqual([]);
      expect(await virsh('domstate', name)).toContain('running');
      expect(await sha256(debian.disk)).toBe(before);
    } finally {
      await removeDomain(name);
      await virsh('net-destroy', net).catch(() => {});
    }
  });
});
