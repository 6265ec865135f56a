/**
 * Boots a disk image under plain qemu-system-x86_64 (TCG) on a chosen hardware set and watches
 * its serial console for a marker. The image is never written: every boot runs on a throwaway
 * qcow2 overlay in a temp directory that is removed afterwards. The guest's NIC is qemu's
 * user network with `restrict=on` (it reaches nothing outside).
 *
 * ```ts
 * const r = await bootDisk({ image: guest.vmdk, hardware: 'vmware', mac: guest.mac });
 * expect(r.reached).toBe(true);
 * expect(r.markers.vmtools).toBe('present');
 * ```
 *
 * The fixture guests (test/harness/debian-guest.ts) print these lines on ttyS0 once
 * multi-user.target is reached (test/fixtures/debian-guest/files/v2vload-markers.sh):
 * `V2VLOAD-GUEST-UP`, `V2VLOAD-IFACE <name> <mac> <ipv4/prefix,..|none>` per interface,
 * `V2VLOAD-ROOT <device>`, `V2VLOAD-CMDLINE <cmdline>`, `V2VLOAD-VMTOOLS present|absent`,
 * `V2VLOAD-MARKERS-END`. {@link parseMarkers} reads them.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * The virtual hardware a disk boots on.
 * - `vmware`: what a VMware VM looks like to Linux: a q35 machine whose PCIe root ports carry
 *   VMware's slot numbers, pvscsi (`-device pvscsi` + scsi-hd) in slot 160 and vmxnet3 in slot
 *   192. Native PCIe hotplug (ACPI PCI hotplug off) exposes those slot numbers, so udev names
 *   the vmxnet3 NIC `ens192` exactly as on VMware.
 * - `virtio`: a pc (i440fx) machine with virtio-blk and virtio-net, what a conversion targets.
 * - `ide`: a pc machine with an IDE disk and an e1000 NIC (`--no-virtio` output).
 */
export type BootHardware = 'vmware' | 'virtio' | 'ide';

/** Marker printed once multi-user.target is reached. */
export const GUEST_UP_MARKER = 'V2VLOAD-GUEST-UP';
/** Last line of the marker block: wait for this one to read all the markers. */
export const MARKERS_END = 'V2VLOAD-MARKERS-END';

/** Texts that show a Linux guest will not reach its root file system. */
export const STUCK_PATTERNS: readonly RegExp[] = [
  /Gave up waiting for root file system device/,
  /ALERT! .* does not exist\. {2}Dropping to a shell!/,
  /\(initramfs\) /,
  /Kernel panic - not syncing/,
  /dracut-initqueue\[\d+\]: Warning: dracut-initqueue: timeout/,
  /Entering emergency mode/,
];

/** What {@link bootDisk} needs. */
export interface BootOptions {
  /** The disk image (any format qemu reads; only read, through an overlay). */
  image: string;
  /** Its format; probed with `qemu-img info` when absent. */
  format?: string;
  /** The hardware set; see {@link BootHardware}. */
  hardware: BootHardware;
  /** MAC address of the NIC (default 52:54:00:12:34:56). Give the source's to keep names. */
  mac?: string;
  /** Stop when the serial log holds this (default {@link MARKERS_END}). */
  marker?: string | RegExp;
  /** Stop early (reached=false) when the log matches one of these, e.g. {@link STUCK_PATTERNS}. */
  stopOn?: readonly RegExp[];
  /**
   * How long to wait for `marker` (default 600 s). A Debian guest reaches multi-user.target in
   * about 2 min under TCG on an idle 2-core machine, and took over 5 min while other test
   * runs shared the cores.
   */
  timeoutMs?: number;
  /** Guest memory, MiB (default 1024). */
  memoryMiB?: number;
  /** Where to keep the serial log after the boot (it is copied there); default: not kept. */
  keepLogAs?: string;
}

/** The markers a fixture guest printed (see the module comment). */
export interface GuestMarkers {
  /** `V2VLOAD-GUEST-UP` seen. */
  up: boolean;
  /** One entry per `V2VLOAD-IFACE` line. */
  ifaces: { name: string; mac: string; ipv4: string[] }[];
  /** The device mounted on / (`V2VLOAD-ROOT`). */
  root?: string;
  /** The kernel command line (`V2VLOAD-CMDLINE`). */
  cmdline?: string;
  /** Whether open-vm-tools is installed (`V2VLOAD-VMTOOLS`). */
  vmtools?: 'present' | 'absent';
}

/** What a boot showed. */
export interface BootResult {
  /** The marker was seen before the timeout. */
  reached: boolean;
  /** The {@link BootOptions.stopOn} pattern that ended the wait, if one did. */
  stoppedOn?: RegExp;
  /** qemu exited by itself before the marker (its exit code or signal). */
  exited?: string;
  /** Seconds from qemu's start to the marker (or to the end of the wait). */
  seconds: number;
  /** The whole serial log (carriage returns removed). */
  log: string;
  /** The markers parsed from `log`. */
  markers: GuestMarkers;
  /** The qemu command line that ran (for failure messages). */
  argv: string[];
}

/** Reads the fixture markers from a serial log (the last block printed wins). */
export function parseMarkers(log: string): GuestMarkers {
  const start = log.lastIndexOf(GUEST_UP_MARKER);
  const out: GuestMarkers = { up: start >= 0, ifaces: [] };
  if (start < 0) return out;
  for (const line of log.slice(start).split('\n')) {
    const t = line.trim();
    let m = /^V2VLOAD-IFACE (\S+) (\S+) (\S+)$/.exec(t);
    if (m) {
      const [, name = '', mac = '', addrs = 'none'] = m;
      out.ifaces.push({ name, mac, ipv4: addrs === 'none' ? [] : addrs.split(',') });
      continue;
    }
    m = /^V2VLOAD-ROOT (\S+)$/.exec(t);
    if (m) out.root = m[1];
    m = /^V2VLOAD-CMDLINE (.*)$/.exec(t);
    if (m) out.cmdline = m[1];
    m = /^V2VLOAD-VMTOOLS (present|absent)$/.exec(t);
    if (m) out.vmtools = m[1] as 'present' | 'absent';
    if (t === MARKERS_END) break;
  }
  return out;
}

/** The qemu arguments of a hardware set, for the overlay `disk` (qcow2) and NIC `mac`. */
export function hardwareArgs(hardware: BootHardware, disk: string, mac: string): string[] {
  const drive = `file=${disk},format=qcow2,if=none,id=disk0,cache=unsafe`;
  const netdev = ['-netdev', 'user,id=net0,restrict=on'];
  switch (hardware) {
    case 'vmware':
      return [
        '-machine',
        'q35,accel=tcg',
        // native PCIe hotplug, so the root ports' slot numbers (VMware's 160, 192) name things
        '-global',
        'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off',
        '-device',
        'pcie-root-port,id=pcie160,bus=pcie.0,addr=0x15,chassis=1,slot=160',
        '-device',
        'pcie-root-port,id=pcie192,bus=pcie.0,addr=0x16,chassis=2,slot=192',
        '-drive',
        drive,
        '-device',
        'pvscsi,id=scsi0,bus=pcie160',
        '-device',
        'scsi-hd,drive=disk0,bus=scsi0.0,channel=0,scsi-id=0,lun=0,bootindex=0',
        ...netdev,
        '-device',
        `vmxnet3,netdev=net0,mac=${mac},bus=pcie192`,
      ];
    case 'virtio':
      return [
        '-machine',
        'pc,accel=tcg',
        '-drive',
        drive,
        '-device',
        'virtio-blk-pci,drive=disk0,bootindex=0',
        ...netdev,
        '-device',
        `virtio-net-pci,netdev=net0,mac=${mac}`,
      ];
    case 'ide':
      return [
        '-machine',
        'pc,accel=tcg',
        '-drive',
        drive,
        '-device',
        'ide-hd,drive=disk0,bus=ide.0,unit=0,bootindex=0',
        ...netdev,
        '-device',
        `e1000,netdev=net0,mac=${mac}`,
      ];
  }
}

async function probeFormat(image: string): Promise<string> {
  const { stdout } = await exec('qemu-img', ['info', '--output=json', image]);
  const format = (JSON.parse(stdout) as { format?: string }).format;
  if (!format) throw new Error(`boot: qemu-img info found no format for ${image}`);
  return format;
}

function matches(text: string, p: string | RegExp): boolean {
  return typeof p === 'string' ? text.includes(p) : p.test(text);
}

/**
 * Boots `opts.image` on `opts.hardware` (on an overlay), waits until the serial log shows
 * `opts.marker`, one of `opts.stopOn`, qemu exits, or the timeout, then kills qemu and removes
 * the overlay. Never throws for a guest that does not boot: look at `reached` and `log`.
 */
export async function bootDisk(opts: BootOptions): Promise<BootResult> {
  const image = path.resolve(opts.image);
  const format = opts.format ?? (await probeFormat(image));
  const marker = opts.marker ?? MARKERS_END;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-boot-'));
  const overlay = path.join(work, 'overlay.qcow2');
  const serial = path.join(work, 'serial.log');
  try {
    await exec('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', format, overlay]);
    await fs.writeFile(serial, '');
    const argv = [
      '-nodefaults',
      '-display',
      'none',
      '-no-user-config',
      '-m',
      String(opts.memoryMiB ?? 1024),
      '-smp',
      '1',
      '-serial',
      `file:${serial}`,
      '-monitor',
      'none',
      ...hardwareArgs(opts.hardware, overlay, opts.mac ?? '52:54:00:12:34:56'),
    ];
    const started = Date.now();
    const child = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    let exited: string | undefined;
    const done = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        exited = signal ?? `exit ${code}`;
        resolve();
      });
      child.on('error', (e) => {
        exited = `spawn error: ${e.message}`;
        resolve();
      });
    });
    let log = '';
    let reached = false;
    let stoppedOn: RegExp | undefined;
    try {
      for (;;) {
        log = (await fs.readFile(serial, 'utf8')).replaceAll('\r', '');
        if (matches(log, marker)) {
          reached = true;
          break;
        }
        stoppedOn = opts.stopOn?.find((p) => p.test(log));
        if (stoppedOn || exited || Date.now() - started > timeoutMs) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      if (!exited) child.kill('SIGKILL');
      await done;
    }
    const seconds = (Date.now() - started) / 1000;
    const selfExit = exited && !reached && !stoppedOn && exited !== 'SIGKILL';
    if (opts.keepLogAs) await fs.copyFile(serial, opts.keepLogAs);
    return {
      reached,
      ...(stoppedOn ? { stoppedOn } : {}),
      ...(selfExit ? { exited: `${exited}: ${stderr.trim()}` } : {}),
      seconds,
      log,
      markers: parseMarkers(log),
      argv: ['qemu-system-x86_64', ...argv],
    };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
