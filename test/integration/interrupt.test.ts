/**
 * SIGINT and SIGTERM at each stage of `image copy` and of `inspect` of a tar.gz OVA, on this
 * machine and over SSH: the real built binary (bin/v2v-load.js) runs as a child process, the
 * test waits until it reaches a stage, signals it, and then checks that it exited 130 (SIGINT)
 * or 143 (SIGTERM) and left nothing behind: no temporary or partial file in the output
 * directory or the temporary directory, no process of the run (here or on the SSH node).
 *
 * Stages of `image copy` are made observable by a `qemu-img` wrapper first on PATH: it pauses
 * (a `sleep` in the command's process group) at the first call of the qemu-img subcommand named
 * in its control file, or throttles `convert` (`-r`), or pauses after `convert` wrote the whole
 * output (the last step before the rename). Over SSH the wrapper is on the remote PATH too: the
 * SSH cases use a private sshd of this file (the harness's, plus `SetEnv PATH=...`). The SSH
 * node is this machine, so "nothing left on the node" is checked in the same directories.
 * Stages the product does not have (e.g. no `qemu-img check` before a copy) are skipped.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeFile } from '../harness/ovf-fixtures.js';
import { runSshd, type SshdInfo, startSshd, stopSshd } from '../harness/sshd.js';
import { randomRaw, sha256File } from './storage-helpers.js';

const exec = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/v2v-load.js');
const OVA_TEMPLATE = path.resolve(import.meta.dirname, '../golden/metadata/ova/web-appliance.ovf');
const MiB = 1024 * 1024;
/** The OVA's big disk: enough that decompressing and hashing it take a while. */
const OVA_DISK_MIB = 192;

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
type Sig = (typeof SIGNALS)[number];
const STATUS: Record<Sig, number> = { SIGINT: 130, SIGTERM: 143 };
const NODES = ['local', 'ssh'] as const;
type NodeKind = (typeof NODES)[number];
/**
 * Where `image copy` can be caught: before the copy (`measure`, and `check` if the source is
 * checked), mid-copy (`convert`, throttled), and after the copy wrote everything, before the
 * rename (`convert-end`).
 */
const COPY_STAGES = ['measure', 'check', 'convert', 'convert-end'] as const;
type CopyStage = (typeof COPY_STAGES)[number];

let root: string;
/** The wrapper's directory (first on PATH): `qemu-img`, its control file and its call log. */
let wrapperDir: string;
let srcDir: string;
let outDir: string;
let tmpDir: string;
let ovaDir: string;
let ova: string;
let srcSha: string;
let sshd: SshdInfo;
/** The qemu-img subcommands an uninterrupted copy runs, in order. */
let copyCalls: string[] = [];
/** False when `inspect` refuses an OVA on an SSH node (then those cases are skipped). */
let ovaOverSsh = true;

function nodeArgs(kind: NodeKind): string[] {
  return kind === 'local'
    ? []
    : ['--host', sshd.url, '--identity', sshd.identity, '--known-hosts', sshd.knownHosts];
}

const WRAPPER = (realQemuImg: string, dir: string) => `#!/bin/bash
# qemu-img as the interrupt tests see it (see interrupt.test.ts).
dir=${JSON.stringify(dir)}
stage=$(cat "$dir/pause-at" 2>/dev/null)
echo "$1" >> "$dir/calls"
pause() {
  if mkdir "$dir/reached" 2>/dev/null; then exec -a "$dir/paused-sleep" sleep 600; fi
}
case "$stage:$1" in
  convert:convert)
    mkdir "$dir/reached" 2>/dev/null
    exec ${realQemuImg} convert -r 1M "\${@:2}" ;;
  convert-end:convert)
    ${realQemuImg} "$@" || exit
    pause ;;
  "$1:$1") pause ;;
esac
exec ${realQemuImg} "$@"
`;

/** One run of the CLI as a child process, its output collected as it comes. */
interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: () => boolean;
}

function start(args: string[]): Started {
  const child = spawn(process.execPath, [BIN, ...args], {
    // Its own process group, as a shell job: SIGINT goes to the group, as Ctrl-C does.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${wrapperDir}:${process.env.PATH}`, TMPDIR: tmpDir },
  });
  let out = '';
  let err = '';
  let finished = false;
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      finished = true;
      resolve({ code, signal });
    }),
  );
  return { child, stdout: () => out, stderr: () => err, exited, done: () => finished };
}

/** Polls `cond` until true; fails when the run ends first (the stage was never reached). */
async function waitFor(run: Started, what: string, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await cond())) {
    if (run.done()) {
      throw new Error(`the run ended before ${what}:\n${run.stdout()}\n${run.stderr()}`);
    }
    if (Date.now() > deadline) throw new Error(`never reached ${what}:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SIGINT to the process group (as Ctrl-C at a terminal), SIGTERM to the process (as kill). */
function send(run: Started, sig: Sig): void {
  const pid = run.child.pid as number;
  process.kill(sig === 'SIGINT' ? -pid : pid, sig);
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** Every file below `dir` (relative names). */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** Live processes whose command line mentions this test's directory (zombies have none). */
async function leftoverProcesses(): Promise<string[]> {
  const r = await exec('pgrep', ['-a', '-f', '--', root]).catch(
    (e: { stdout?: string }) => e, // exit 1: none
  );
  return (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l !== '' && !l.includes('pgrep'));
}

/** The run's processes are gone (killed ones may take a moment to be reaped). */
async function expectNoProcessLeft(): Promise<void> {
  let left = await leftoverProcesses();
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = await leftoverProcesses();
  }
  expect(left).toEqual([]);
}

/** Exit status, the interruption reported (and on stdout as JSON), nothing left behind. */
async function expectInterrupted(run: Started, sig: Sig, dirs: string[]): Promise<void> {
  const { code, signal } = await run.exited;
  expect({ code, signal, stderr: run.stderr() }).toMatchObject({
    code: STATUS[sig],
    signal: null,
    stderr: expect.stringContaining(`v2v-load: error: interrupted by ${sig}\n`),
  });
  const last = run.stdout().trim().split('\n').at(-1) ?? '';
  expect(JSON.parse(last)).toMatchObject({ code: 'INTERRUPTED', signal: sig });
  for (const d of dirs)
    expect({ dir: d, files: await filesBelow(d) }).toEqual({ dir: d, files: [] });
  await expectNoProcessLeft();
}

/** A private sshd whose sessions find the wrapper first on PATH. */
async function sshdWithWrapper(): Promise<SshdInfo> {
  const info = await startSshd();
  await stopSshdOnly(info);
  const stdPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  await fs.appendFile(info.configFile, `SetEnv PATH=${wrapperDir}:${stdPath}\n`);
  await runSshd(info);
  return info;
}

/** Stops a harness sshd but keeps its directory (keys, config) for a restart. */
async function stopSshdOnly(info: SshdInfo): Promise<void> {
  const pid = Number((await fs.readFile(info.pidFile, 'utf8')).trim());
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 200; i++) {
    const up = await exec('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${info.port}`]).then(
      () => true,
      () => false,
    );
    if (!up) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('sshd did not stop');
}

/** A tar.gz OVA: the OVF, a big random disk, a small one, and the manifest last. */
async function buildOva(file: string): Promise<void> {
  const stage = path.join(root, 'ova-stage');
  await fs.mkdir(stage);
  const disk1 = 'web-appliance-disk1.vmdk';
  const disk2 = 'web-appliance-disk2.vmdk';
  const ovf = (await fs.readFile(OVA_TEMPLATE, 'utf8')).replace(
    'ovf:size="66048"',
    `ovf:size="${OVA_DISK_MIB * MiB}"`,
  );
  await fs.writeFile(path.join(stage, 'web-appliance.ovf'), ovf);
  const fh = await fs.open(path.join(stage, disk1), 'w');
  for (let i = 0; i < OVA_DISK_MIB; i++) await fh.write(randomBytes(MiB));
  await fh.close();
  await fs.writeFile(path.join(stage, disk2), fakeFile(disk2, 5000));
  const names = ['web-appliance.ovf', disk1, disk2];
  const lines: string[] = [];
  for (const n of names) {
    const h = createHash('sha256').update(await fs.readFile(path.join(stage, n)));
    lines.push(`SHA256(${n})= ${h.digest('hex')}`);
  }
  await fs.writeFile(path.join(stage, 'web-appliance.mf'), `${lines.join('\n')}\n`);
  // The manifest after the disks: they are hashed again from the extracted copies afterwards,
  // which is the verification stage.
  await exec('bash', [
    '-c',
    'd=$1 out=$2; shift 2; tar --format=ustar -cf - -C "$d" "$@" | gzip -1 > "$out"',
    'tar',
    stage,
    file,
    ...names,
    'web-appliance.mf',
  ]);
  await fs.rm(stage, { recursive: true });
}

/** Bytes the process has read so far (/proc/PID/io rchar). */
async function bytesRead(pid: number): Promise<number> {
  const io = await fs.readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  return Number(/rchar: (\d+)/.exec(io)?.[1] ?? 0);
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-interrupt-'));
  await fs.chmod(root, 0o755);
  wrapperDir = path.join(root, 'bin');
  srcDir = path.join(root, 'src');
  outDir = path.join(root, 'out');
  tmpDir = path.join(root, 'tmp');
  ovaDir = path.join(root, 'ova');
  for (const d of [wrapperDir, srcDir, outDir, tmpDir, ovaDir]) await fs.mkdir(d);
  const { stdout: real } = await exec('bash', ['-c', 'command -v qemu-img']);
  await fs.writeFile(path.join(wrapperDir, 'qemu-img'), WRAPPER(real.trim(), wrapperDir), {
    mode: 0o755,
  });
  await fs.writeFile(path.join(wrapperDir, 'pause-at'), 'none');
  // 64 MiB, its first 16 MiB random: the throttled convert (1 MiB/s) takes long enough. A
  // qcow2, so that a check of the source (qemu-img check) is a stage too.
  const raw = path.join(root, 'disk.raw');
  await randomRaw(raw, 64, 16);
  await exec('qemu-img', [
    'convert',
    '-f',
    'raw',
    '-O',
    'qcow2',
    raw,
    path.join(srcDir, 'disk.qcow2'),
  ]);
  await fs.rm(raw);
  srcSha = await sha256File(path.join(srcDir, 'disk.qcow2'));
  ova = path.join(ovaDir, 'appliance.ova');
  await buildOva(ova);
  sshd = await sshdWithWrapper();
});

afterAll(async () => {
  if (sshd) await stopSshd(sshd);
  if (root) await fs.rm(root, { recursive: true, force: true });
});

/** Sets the wrapper's stage and clears its marks. */
async function pauseAt(stage: string): Promise<void> {
  await fs.rm(path.join(wrapperDir, 'reached'), { recursive: true, force: true });
  await fs.rm(path.join(wrapperDir, 'calls'), { force: true });
  await fs.writeFile(path.join(wrapperDir, 'pause-at'), stage);
}

describe('image copy, interrupted', () => {
  const src = () => path.join(srcDir, 'disk.qcow2');
  const dst = () => path.join(outDir, 'disk.qcow2');
  const copyArgs = (kind: NodeKind) => [
    'image',
    'copy',
    src(),
    dst(),
    '--source-format',
    'qcow2',
    '--json',
    '-v',
    ...nodeArgs(kind),
  ];

  beforeAll(async () => {
    // An uninterrupted copy: which qemu-img subcommands it runs (the stages there are).
    await pauseAt('none');
    const run = start(copyArgs('local'));
    const { code } = await run.exited;
    if (code !== 0) throw new Error(`the uninterrupted copy failed:\n${run.stderr()}`);
    copyCalls = (await fs.readFile(path.join(wrapperDir, 'calls'), 'utf8')).trim().split('\n');
    await fs.rm(dst());
  });

  it('an uninterrupted copy measures, then converts', () => {
    expect(copyCalls).toContain('measure');
    expect(copyCalls.indexOf('measure')).toBeLessThan(copyCalls.lastIndexOf('convert'));
  });

  describe.each(NODES)('on the %s node', (kind) => {
    describe.each(COPY_STAGES)('at %s', (stage: CopyStage) => {
      it.for(SIGNALS)('%s: exits with its status and leaves nothing', async (sig, ctx) => {
        const sub = stage === 'convert-end' ? 'convert' : stage;
        if (!copyCalls.includes(sub)) ctx.skip(`image copy runs no qemu-img ${sub}`);
        await pauseAt(stage);
        const run = start(copyArgs(kind));
        await waitFor(run, `qemu-img ${stage}`, () => exists(path.join(wrapperDir, 'reached')));
        if (stage === 'convert') {
          // Mid-copy: qemu-img reported progress, and the partial output is there.
          await waitFor(run, 'copy progress', async () =>
            run
              .stdout()
              .split('\n')
              .some((l) => /"event":"progress","percent":(?!0[,}])/.test(l)),
          );
          expect((await fs.readdir(outDir)).length).toBe(1);
        }
        if (stage === 'convert-end') expect((await fs.readdir(outDir)).length).toBe(1);
        send(run, sig);
        await expectInterrupted(run, sig, [outDir, tmpDir]);
        expect(await sha256File(src())).toBe(srcSha);
      });
    });
  });
});

describe('inspect of a tar.gz OVA, interrupted', () => {
  /** `--tmp-dir` when the OVA reader takes one (else it writes under TMPDIR): this test's. */
  let tmpDirArgs: string[] = [];
  const inspectArgs = (kind: NodeKind) => [
    'inspect',
    ova,
    '--json',
    '-v',
    ...tmpDirArgs,
    ...nodeArgs(kind),
  ];

  beforeAll(async () => {
    const help = start(['inspect', '--help']);
    await help.exited;
    if (help.stdout().includes('--tmp-dir')) tmpDirArgs = ['--tmp-dir', tmpDir];
  });

  describe.each(NODES)('on the %s node', (kind) => {
    beforeAll(async () => {
      if (kind !== 'ssh') return;
      const run = start(inspectArgs('ssh'));
      const { code } = await run.exited;
      // Reading an OVA over SSH is refused (a usage error) until it is supported.
      ovaOverSsh = code !== 2;
    });

    it.for(SIGNALS)(
      'during decompression, %s: exits with its status and leaves nothing',
      async (sig, ctx) => {
        if (kind === 'ssh' && !ovaOverSsh) ctx.skip('inspect refuses an OVA on an SSH node');
        const run = start(inspectArgs(kind));
        const pid = run.child.pid as number;
        await waitFor(run, 'the OVA being read', async () => /as a tar\.gz OVA/.test(run.stderr()));
        const before = await bytesRead(pid);
        // 16 MiB into a ~190 MiB archive: decompressing.
        await waitFor(run, '16 MiB of the OVA read', async () => {
          return (await bytesRead(pid)) > before + 16 * MiB;
        });
        send(run, sig);
        await expectInterrupted(run, sig, [tmpDir]);
        expect(await fs.readdir(ovaDir)).toEqual(['appliance.ova']);
      },
    );

    it.for(SIGNALS)(
      'during manifest verification, %s: exits with its status and leaves nothing',
      async (sig, ctx) => {
        if (kind === 'ssh' && !ovaOverSsh) ctx.skip('inspect refuses an OVA on an SSH node');
        const run = start(inspectArgs(kind));
        await waitFor(run, 'manifest verification', async () =>
          /verifying .* against web-appliance\.mf/.test(run.stderr()),
        );
        send(run, sig);
        await expectInterrupted(run, sig, [tmpDir]);
        expect(await fs.readdir(ovaDir)).toEqual(['appliance.ova']);
      },
    );
  });
});
