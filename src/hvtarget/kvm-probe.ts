/**
 * Whether KVM really works on a node. /dev/kvm may open while a guest hangs in its first
 * instructions, so the node's own kernel is booted once under KVM (no disk, no initrd: it
 * panics at once when KVM works) and the verdict is kept in {@link KVM_PROBE_CACHE} on the
 * node, keyed by the emulator, the kernel and /dev/kvm. Used by the KVM hypervisor driver and
 * by `convert --domain-type auto`.
 */
import * as path from 'node:path';
import { CommandError } from '../errors.js';
import type { Node } from '../node/node.js';

/** The QEMU emulator binaries a node may have. */
export const QEMU_BINARIES = [
  '/usr/bin/qemu-system-x86_64',
  '/usr/libexec/qemu-kvm',
  '/usr/bin/kvm',
];

/** The first QEMU emulator the node has, or undefined. */
export async function findQemuOn(node: Node): Promise<string | undefined> {
  for (const b of QEMU_BINARIES) if (await node.stat(b)) return b;
  return undefined;
}

/** Where the verdict of the KVM boot probe is kept on the node. */
export const KVM_PROBE_CACHE = '/var/cache/v2v-load/kvm-probe.json';
/** How long the probe kernel may take to reach its panic under KVM. */
const PROBE_TIMEOUT_MS = 20_000;

export interface ProbeVerdict {
  key: string;
  works: boolean;
  detail: string;
}

export async function newestKernel(node: Node): Promise<string | undefined> {
  const names = (await node.list('/boot').catch(() => []))
    .filter((e) => e.type === 'file' && e.name.startsWith('vmlinuz-'))
    .map((e) => e.name)
    .sort();
  const last = names.at(-1);
  return last ? path.posix.join('/boot', last) : undefined;
}

/** Boots `kernel` under KVM with no root disk: a working KVM reaches the kernel's panic. */
export async function probeKvmBoot(
  node: Node,
  qemu: string,
  kernel: string,
): Promise<ProbeVerdict> {
  const st = [await node.stat(qemu), await node.stat(kernel), await node.stat('/dev/kvm')];
  const key = JSON.stringify([qemu, st[0]?.size, st[0]?.mtime, kernel, st[1]?.size, st[2]?.mtime]);
  const cached = await node
    .readFile(KVM_PROBE_CACHE)
    .then((b) => JSON.parse(b.toString('utf8')) as ProbeVerdict)
    .catch(() => undefined);
  if (cached?.key === key && typeof cached.works === 'boolean') return cached;
  let verdict: ProbeVerdict;
  try {
    const r = await node.run(
      [
        qemu,
        '-machine',
        'accel=kvm',
        '-m',
        '128',
        '-display',
        'none',
        '-nodefaults',
        '-no-user-config',
        '-serial',
        'stdio',
        '-monitor',
        'none',
        '-no-reboot',
        '-kernel',
        kernel,
        '-append',
        'console=ttyS0 panic=-1 loglevel=4',
      ],
      { timeoutMs: PROBE_TIMEOUT_MS, reject: false },
    );
    const works = /Kernel panic|VFS: Unable to mount root/.test(r.stdout);
    verdict = {
      key,
      works,
      detail: works
        ? 'a kernel booted under KVM'
        : `a kernel booted under KVM did not reach its first messages (exit ${r.exitCode}: ${r.stderr.trim().split('\n').at(-1) ?? ''})`,
    };
  } catch (e) {
    if (!(e instanceof CommandError) || !e.timedOut) throw e;
    verdict = {
      key,
      works: false,
      detail: `a kernel booted under KVM hung (no panic within ${PROBE_TIMEOUT_MS / 1000} s)`,
    };
  }
  await node.mkdir(path.posix.dirname(KVM_PROBE_CACHE), { recursive: true });
  await node.writeFileAtomic(KVM_PROBE_CACHE, JSON.stringify(verdict));
  return verdict;
}

/**
 * Whether guests on `node` can run under KVM: a QEMU emulator, /dev/kvm, and the boot probe.
 * libvirt's own view (its domain types) is the caller's to add.
 */
export async function kvmWorks(node: Node): Promise<{ works: boolean; detail: string }> {
  const qemu = await findQemuOn(node);
  if (!qemu) return { works: false, detail: 'no QEMU emulator on the node' };
  if (!(await node.stat('/dev/kvm'))) return { works: false, detail: 'no /dev/kvm' };
  const kernel = await newestKernel(node);
  if (!kernel) return { works: false, detail: 'no /boot/vmlinuz-* to probe KVM with' };
  return probeKvmBoot(node, qemu, kernel);
}
