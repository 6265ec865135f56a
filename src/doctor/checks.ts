/**
 * The checks `v2v-load doctor` runs on a node. Each is a small function of the node and the
 * options that returns what it found; a failure carries a hint that says what to do.
 */
import { CommandError, CommandNotFoundError, V2vError } from '../errors.js';
import { redactSecrets } from '../log/redact.js';
import type { Node } from '../node/node.js';
import { DEFAULT_LIBVIRT_URI } from '../provisioning/libvirt/virsh.js';

/** How a check ended. */
export interface CheckResult {
  name: string;
  ok: boolean;
  /** A failed required check makes the whole doctor run fail. */
  required: boolean;
  /** What was found (a version, a size, the error). */
  detail: string;
  /** What to do about a failure or a limitation. */
  hint?: string | undefined;
  /** True when the check was not run (e.g. the node was unreachable). */
  skipped?: boolean | undefined;
  durationMs: number;
}

/** Hardware acceleration for guests and for the libguestfs appliance. */
export const ACCELS = ['auto', 'kvm', 'tcg'] as const;
export type Accel = (typeof ACCELS)[number];

export interface DoctorOptions {
  /** libvirt URI to check (virsh -c). */
  connect: string;
  /** Directory whose free space is checked (the datastore). */
  dir: string;
  /** Minimum free bytes in `dir`. */
  minFreeBytes: number;
  /** Which accelerator to try for the libguestfs appliance; `auto` tries KVM, then TCG. */
  accel: Accel;
  /** Launch the libguestfs appliance (takes 10-60 s). */
  libguestfs: boolean;
}

export const DEFAULT_DOCTOR_OPTIONS: DoctorOptions = {
  connect: DEFAULT_LIBVIRT_URI,
  dir: '/var/lib/libvirt/images',
  minFreeBytes: 1024 ** 3,
  accel: 'auto',
  libguestfs: true,
};

/** What a check function returns; the runner adds name, required and timing. */
export type Finding = Pick<CheckResult, 'ok' | 'detail' | 'hint' | 'skipped'> & {
  /** Facts for later checks (e.g. whether /dev/kvm exists). */
  facts?: Record<string, unknown>;
};

export interface CheckContext {
  node: Node;
  options: DoctorOptions;
  /** Facts gathered by earlier checks. */
  facts: Record<string, unknown>;
}

export interface Check {
  name: string;
  required: boolean;
  run(ctx: CheckContext): Promise<Finding>;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

function failure(e: unknown, hint?: string): Finding {
  if (e instanceof CommandNotFoundError) {
    return { ok: false, detail: `\`${e.argv[0]}\` is not installed`, hint: e.hint ?? hint };
  }
  const detail = e instanceof Error ? e.message : String(e);
  return { ok: false, detail, hint: (e instanceof V2vError && e.hint) || hint };
}

export const nodeCheck: Check = {
  name: 'node',
  required: true,
  async run({ node }) {
    try {
      const r = await node.run(['uname', '-srm'], { timeoutMs: 30_000 });
      return { ok: true, detail: `${node.name}: ${firstLine(r.stdout)}` };
    } catch (e) {
      return failure(e);
    }
  },
};

/** `qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u16)` -> `7.2.22`. */
export function parseQemuImgVersion(text: string): string | undefined {
  return /qemu-img version (\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

function versionAtLeast(version: string, min: [number, number]): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

export const qemuImgCheck: Check = {
  name: 'qemu-img',
  required: true,
  async run({ node }) {
    try {
      const r = await node.run(['qemu-img', '--version'], { timeoutMs: 30_000 });
      const version = parseQemuImgVersion(r.stdout);
      if (!version) return { ok: false, detail: `unexpected output: ${firstLine(r.stdout)}` };
      if (!versionAtLeast(version, [6, 1])) {
        return {
          ok: false,
          detail: `qemu-img ${version} is older than 6.1`,
          hint: 'install qemu-utils 6.1 or newer',
        };
      }
      return { ok: true, detail: `qemu-img ${version}` };
    } catch (e) {
      return failure(e, 'install qemu-utils');
    }
  },
};

export const virshCheck: Check = {
  name: 'virsh',
  required: true,
  async run({ node }) {
    try {
      const r = await node.run(['virsh', '--version'], { timeoutMs: 30_000 });
      return { ok: true, detail: `virsh ${firstLine(r.stdout)}` };
    } catch (e) {
      return failure(e, 'install libvirt-clients');
    }
  },
};

/**
 * Parses `virsh version`: `Running hypervisor: QEMU 7.2.22` and `Using library: libvirt 9.0.0`.
 */
export function parseVirshVersion(text: string): { hypervisor?: string; library?: string } {
  const hypervisor = /Running hypervisor:\s*(.+)/.exec(text)?.[1]?.trim();
  const library = /Using library:\s*(.+)/.exec(text)?.[1]?.trim();
  return { ...(hypervisor ? { hypervisor } : {}), ...(library ? { library } : {}) };
}

export const libvirtdCheck: Check = {
  name: 'libvirtd',
  required: true,
  async run({ node, options }) {
    try {
      // The first connection on a fresh host probes QEMU's capabilities: allow for it.
      const r = await node.run(['virsh', '-c', options.connect, 'version'], { timeoutMs: 120_000 });
      const v = parseVirshVersion(r.stdout);
      return {
        ok: true,
        detail: `${redactSecrets(options.connect)} answers: ${v.hypervisor ?? 'unknown hypervisor'} (${v.library ?? 'libvirt'})`,
      };
    } catch (e) {
      return failure(
        e,
        `start libvirtd for ${redactSecrets(options.connect)} (without systemd: \`virtlogd -d\` then \`libvirtd -d\`)`,
      );
    }
  },
};

export const kvmCheck: Check = {
  name: 'kvm',
  required: false,
  async run({ node }) {
    const r = await node.run(['test', '-c', '/dev/kvm', '-a', '-w', '/dev/kvm'], {
      reject: false,
      timeoutMs: 10_000,
    });
    if (r.exitCode === 0) {
      return { ok: true, detail: '/dev/kvm is present and writable', facts: { kvm: true } };
    }
    return {
      ok: false,
      detail: '/dev/kvm is missing or not writable: guests run under TCG emulation (slow)',
      hint: "define domains with type 'qemu' (--domain-type qemu); load the kvm module if the CPU supports it",
      facts: { kvm: false },
    };
  },
};

/** The environment that makes libguestfs use its direct backend, optionally forcing TCG. */
export function libguestfsEnv(accel: 'kvm' | 'tcg'): Record<string, string> {
  // Set the settings either way: an inherited force_tcg must not turn a KVM probe into TCG.
  return {
    LIBGUESTFS_BACKEND: 'direct',
    LIBGUESTFS_BACKEND_SETTINGS: accel === 'tcg' ? 'force_tcg' : '',
  };
}

/** Launches the appliance once (no disks: /dev/null) and asks the daemon its version. */
async function launchAppliance(node: Node, accel: 'kvm' | 'tcg', timeoutMs: number) {
  const started = performance.now();
  const r = await node.run(['guestfish', '--ro', '-a', '/dev/null', '--', 'run', ':', 'version'], {
    env: libguestfsEnv(accel),
    timeoutMs,
  });
  const [major, minor, release] = ['major', 'minor', 'release'].map(
    (k) => new RegExp(`^${k}: (\\d+)`, 'm').exec(r.stdout)?.[1] ?? '?',
  );
  return { version: `${major}.${minor}.${release}`, seconds: (performance.now() - started) / 1000 };
}

/** The telling line of a failed appliance launch (libguestfs prints many). */
function shortError(e: unknown): string {
  if (e instanceof CommandError && e.timedOut) return 'timed out: it hung';
  const text = e instanceof CommandError ? e.stderr : e instanceof Error ? e.message : String(e);
  const m = /killed by signal \d+[^.\n]*/.exec(text) ?? /error: ([^\n]+)/.exec(text);
  return (m?.[1] ?? m?.[0] ?? firstLine(text)).trim();
}

export const libguestfsCheck: Check = {
  name: 'libguestfs',
  required: true,
  async run({ node, options, facts }) {
    if (!options.libguestfs)
      return { ok: true, skipped: true, detail: 'skipped (--no-libguestfs)' };
    const tryKvm = options.accel === 'kvm' || (options.accel === 'auto' && facts.kvm === true);
    let kvmFailure: string | undefined;
    if (tryKvm) {
      try {
        const a = await launchAppliance(node, 'kvm', 90_000);
        return {
          ok: true,
          detail: `appliance ${a.version} launched with KVM in ${a.seconds.toFixed(1)} s`,
          facts: { accel: 'kvm' },
        };
      } catch (e) {
        if (e instanceof CommandNotFoundError) return failure(e, 'install libguestfs-tools');
        kvmFailure = shortError(e);
        if (options.accel === 'kvm') {
          return {
            ok: false,
            detail: `appliance launch with KVM failed: ${kvmFailure}`,
            hint: 'retry with --accel tcg to use software emulation',
          };
        }
      }
    }
    try {
      const a = await launchAppliance(node, 'tcg', 300_000);
      const why = kvmFailure
        ? `KVM launch failed (${kvmFailure}); only TCG works`
        : options.accel === 'tcg'
          ? 'TCG as asked'
          : 'no KVM: only TCG works';
      return {
        ok: true,
        detail: `appliance ${a.version} launched under TCG in ${a.seconds.toFixed(1)} s: ${why}`,
        hint:
          options.accel === 'tcg'
            ? undefined
            : "set LIBGUESTFS_BACKEND_SETTINGS=force_tcg for libguestfs tools and use domain type 'qemu' (--accel tcg)",
        facts: { accel: 'tcg' },
      };
    } catch (e) {
      return failure(
        e,
        'run `libguestfs-test-tool` on the node; libguestfs needs a kernel in /boot (linux-image-amd64)',
      );
    }
  },
};

/** Parses `df -P -B1 DIR`: the second line's 2nd (size) and 4th (available) fields. */
export function parseDf(text: string): { size: number; avail: number; mount: string } | undefined {
  const line = text.trim().split('\n')[1];
  if (!line) return undefined;
  const f = line.trim().split(/\s+/);
  const size = Number(f[1]);
  const avail = Number(f[3]);
  if (!Number.isFinite(size) || !Number.isFinite(avail)) return undefined;
  return { size, avail, mount: f.slice(5).join(' ') };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export const freeSpaceCheck: Check = {
  name: 'free-space',
  required: true,
  async run({ node, options }) {
    const st = await node.stat(options.dir).catch(() => undefined);
    if (st?.type !== 'directory') {
      return {
        ok: false,
        detail: `${options.dir} is not a directory on ${node.name}`,
        hint: 'create it, or name the datastore directory with --dir',
      };
    }
    try {
      const r = await node.run(['df', '-P', '-B1', '--', options.dir], { timeoutMs: 30_000 });
      const df = parseDf(r.stdout);
      if (!df) return { ok: false, detail: `cannot read df output: ${firstLine(r.stdout)}` };
      const detail = `${formatBytes(df.avail)} free of ${formatBytes(df.size)} in ${options.dir} (on ${df.mount})`;
      if (df.avail < options.minFreeBytes) {
        return {
          ok: false,
          detail,
          hint: `free space below the required ${formatBytes(options.minFreeBytes)} (--min-free)`,
        };
      }
      return { ok: true, detail };
    } catch (e) {
      return failure(e);
    }
  },
};

/** The checks, in the order they run. */
export const ALL_CHECKS: readonly Check[] = [
  nodeCheck,
  qemuImgCheck,
  virshCheck,
  libvirtdCheck,
  kvmCheck,
  libguestfsCheck,
  freeSpaceCheck,
];
