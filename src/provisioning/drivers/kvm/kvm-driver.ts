/**
 * KVM (VCL's libvirt/KVM.pm): domains of type 'kvm'. Fits a node with a QEMU emulator,
 * /dev/kvm, 'kvm' among libvirt's domain types, and a KVM that really runs a guest: on some
 * hosts /dev/kvm opens but a guest hangs in its first instructions, so the node's own kernel
 * is booted once under KVM (no disk, no initrd: it panics at once when KVM works) and the
 * verdict is kept in {@link KVM_PROBE_CACHE} on the node, keyed by the emulator and kernel.
 */
import * as path from 'node:path';
import { CommandError } from '../../../errors.js';
import type { DomainDefinitionV2v } from '../../../hvtarget/domain.js';
import type { Node } from '../../../node/node.js';
import type {
  DriverContext,
  DriverFit,
  HypervisorDriver,
  PreDefineSteps,
  PreparedDisks,
} from '../driver.js';
import { findQemuBinary, qemuPreDefine } from '../qemu-family.js';

/** Where the verdict of the KVM boot probe is kept on the node. */
export const KVM_PROBE_CACHE = '/var/cache/v2v-load/kvm-probe.json';
/** How long the probe kernel may take to reach its panic under KVM. */
const PROBE_TIMEOUT_MS = 20_000;

interface ProbeVerdict {
  key: string;
  works: boolean;
  detail: string;
}

async function newestKernel(node: Node): Promise<string | undefined> {
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

export class KvmDriver implements HypervisorDriver {
  readonly name = 'KVM';
  readonly domainType = 'kvm' as const;
  readonly diskDriverName = 'qemu';
  readonly diskFormat = 'qcow2' as const;
  readonly diskFileExtension = 'qcow2' as const;

  async fits(ctx: DriverContext): Promise<DriverFit> {
    const asked = ctx.res.vmhost.domainType;
    if (asked === 'qemu') return { fits: false, reason: 'vmhost.domainType is qemu' };
    const qemu = await findQemuBinary(ctx);
    if (!qemu) return { fits: false, reason: 'no QEMU emulator on the node' };
    if (!(await ctx.node.stat('/dev/kvm'))) return { fits: false, reason: 'no /dev/kvm' };
    if (!(await ctx.domainTypes()).includes('kvm')) {
      return { fits: false, reason: "libvirt offers no 'kvm' domain type" };
    }
    if (asked === 'kvm') return { fits: true };
    const kernel = await newestKernel(ctx.node);
    if (!kernel) return { fits: false, reason: 'no /boot/vmlinuz-* to probe KVM with' };
    const v = await probeKvmBoot(ctx.node, qemu, kernel);
    return v.works ? { fits: true } : { fits: false, reason: v.detail };
  }

  extendDomain(def: DomainDefinitionV2v): void {
    def.type = 'kvm';
  }

  preDefine(ctx: DriverContext, steps: PreDefineSteps): Promise<PreparedDisks> {
    return qemuPreDefine(ctx, steps);
  }
}
