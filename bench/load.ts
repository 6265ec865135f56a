/**
 * load: the VCL provisioner's load (COW over a master already in the datastore, domain XML,
 * define, start) with postLoad.wait=false, so the guest's own boot is not counted. Masters of
 * 1 GiB and 1 TiB virtual size (empty qcow2) on the local node, the 1 GiB one over the SSH node
 * (the test sshd, as root, with root's login shell), and 20 loads at once on the local node.
 * Median of 5 loads each; each load begins with the computer's domains deleted (not timed).
 * Prints the node commands (commands and file operations) one load runs, and the time of its
 * `virsh start` (QEMU's start), which the ms_per_load figures include.
 * {"bench":"load","ms_per_load_1g":..,"ms_per_load_1t":..,"ms_per_load_ssh":..,"s_for_20":..,
 *  "commands_per_load":..,"commands_per_load_ssh":..,"ms_define_start_median":..}
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createRootContainer, createRunContainer } from '../src/di/composition-root.js';
import { TOKENS } from '../src/di/tokens.js';
import { StreamLogger } from '../src/log/logger.js';
import {
  LOAD_STEPS,
  type LoadStep,
  type ProvisionerHooks,
  type VclProvisioner,
} from '../src/provisioning/provisioner.js';
import { nodeSpecOf, parseReservation, type Reservation } from '../src/provisioning/reservation.js';
import { type SshdInfo, startSshd, stopSshd } from '../test/harness/sshd.js';

const exec = promisify(execFile);
const DIR = '/var/tmp/v2v-load-bench';
const RUNS = 5;
const PREFIX = 'v2vbench';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

export async function run(): Promise<void> {
  await fs.mkdir(DIR, { recursive: true, mode: 0o755 });
  const work = await fs.mkdtemp(path.join(DIR, 'load-'));
  await fs.chmod(work, 0o755);
  const log = new StreamLogger('warn', (t) => process.stderr.write(t));
  const root = createRootContainer(log);
  // the time of each step of the load under way (one load at a time, except for the 20)
  let stepAt: Partial<Record<LoadStep, number>> = {};
  const hooks: ProvisionerHooks = {
    afterLoadStep: (s) => {
      stepAt[s] = performance.now();
    },
  };
  root.register(TOKENS.ProvisionerHooks, { useValue: hooks });
  let sshd: SshdInfo | undefined;
  const doc = (computer: number, image: string, node: Record<string, string | null>): Reservation =>
    parseReservation({
      reservation: { id: computer, requestId: computer },
      computer: { id: computer, shortName: `${PREFIX}-${computer}` },
      image: { id: 1, name: image, prettyName: 'Bench', revision: 1, minRamMiB: 64, minCpus: 1 },
      vmhost: {
        node: 'local',
        identity: null,
        knownHosts: null,
        ...node,
        datastorePath: work,
        vmPath: work,
        repositoryPath: null,
        domainType: 'qemu',
      },
      postLoad: { wait: false },
    });
  const provisioner = async (res: Reservation): Promise<VclProvisioner> => {
    const run = await createRunContainer(root, nodeSpecOf(res), {
      libvirtUri: res.vmhost.libvirtUri,
      allowedBackingDirs: [work],
    });
    return run.resolve<VclProvisioner>(TOKENS.VclProvisioner);
  };
  const clean = async (res: Reservation): Promise<void> => {
    const p = await provisioner(res);
    await p.postMaintenanceAction(res);
    await p.dispose();
  };
  const starts: number[] = [];
  const stepMs: Record<string, number[]> = {};
  /** Per series: the median load without its define + start (QEMU's own start). */
  const without: Record<string, number> = {};
  const commands: Record<string, number> = {};
  const agentRuns: Record<string, number> = {};
  const series = async (
    label: string,
    image: string,
    node: Record<string, string | null>,
  ): Promise<number> => {
    const times: number[] = [];
    const overhead: number[] = [];
    const res = doc(1, image, node);
    for (let i = 0; i < RUNS + 1; i++) {
      await clean(res);
      const p = await provisioner(res);
      stepAt = {};
      const t0 = performance.now();
      const r = await p.load(res);
      const ms = performance.now() - t0;
      await p.dispose();
      if (i === 0) continue; // warm-up: capabilities cache, first SSH login
      times.push(ms);
      // define + start run as one virsh batch: the time from the XML written to the domain running
      const ds = (stepAt.define ?? 0) - (stepAt['write-xml'] ?? 0);
      starts.push(ds);
      overhead.push(ms - ds);
      let prev = t0;
      for (const step of LOAD_STEPS) {
        const at = stepAt[step];
        if (at === undefined) continue;
        const key = `${label}: ${step}`;
        stepMs[key] = [...(stepMs[key] ?? []), at - prev];
        prev = at;
      }
      commands[label] = r.nodeCommands;
      agentRuns[label] = p.agentRuns;
    }
    await clean(res);
    process.stderr.write(
      `load ${label}: ${times.map((t) => t.toFixed(0)).join(', ')} ms; ${commands[label]} node ` +
        `commands and file operations per load (${agentRuns[label]} commands through the agent)\n`,
    );
    without[label] = Math.round(median(overhead));
    return Math.round(median(times));
  };
  try {
    for (const [name, size] of [
      ['bench-1g-v1', '1G'],
      ['bench-1t-v1', '1T'],
    ] as const) {
      await exec('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        path.join(work, `${name}.qcow2`),
        size,
      ]);
    }
    const local = { node: 'local' };
    const ms1g = await series('local 1 GiB', 'bench-1g-v1', local);
    const ms1t = await series('local 1 TiB', 'bench-1t-v1', local);
    sshd = await startSshd();
    const ssh = { node: sshd.url, identity: sshd.identity, knownHosts: sshd.knownHosts };
    const msSsh = await series('ssh 1 GiB', 'bench-1g-v1', ssh);

    const docs = Array.from({ length: 20 }, (_, i) => doc(100 + i, 'bench-1g-v1', local));
    await Promise.all(docs.map(clean));
    const t0 = performance.now();
    await Promise.all(docs.map(async (d) => (await provisioner(d)).load(d)));
    const s20 = Math.round((performance.now() - t0) / 100) / 10;
    process.stderr.write(`20 loads at once: ${s20} s\n`);
    await Promise.all(docs.map(clean));
    for (const [k, v] of Object.entries(stepMs)) {
      process.stderr.write(`  ${k}: median ${Math.round(median(v))} ms\n`);
    }
    const msStart = Math.round(median(starts));
    process.stderr.write(`virsh define + start within those loads: median ${msStart} ms\n`);
    console.log(
      JSON.stringify({
        bench: 'load',
        ms_per_load_1g: ms1g,
        ms_per_load_1t: ms1t,
        ms_per_load_ssh: msSsh,
        s_for_20: s20,
        commands_per_load: commands['local 1 GiB'],
        commands_per_load_ssh: commands['ssh 1 GiB'],
        agent_runs_per_load_ssh: agentRuns['ssh 1 GiB'],
        ms_define_start_median: msStart,
        ms_without_start_1g: without['local 1 GiB'],
        ms_without_start_1t: without['local 1 TiB'],
        ms_without_start_ssh: without['ssh 1 GiB'],
      }),
    );
  } finally {
    const out = await exec('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name']).catch(
      () => ({ stdout: '' }),
    );
    for (const n of out.stdout.split('\n').filter((x) => x.startsWith(`${PREFIX}-`))) {
      await exec('virsh', ['-c', 'qemu:///system', 'destroy', n]).catch(() => {});
      await exec('virsh', ['-c', 'qemu:///system', 'undefine', n]).catch(() => {});
    }
    await root.resolve<{ closeAll(): Promise<void> }>(TOKENS.NodeFactory).closeAll();
    if (sshd) await stopSshd(sshd);
    await fs.rm(work, { recursive: true, force: true });
  }
}
