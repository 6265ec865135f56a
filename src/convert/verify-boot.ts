/**
 * `--verify-boot`: boots the converted guest as a throwaway libvirt domain and waits for its
 * userspace on the serial console. Never the output itself: every disk gets a qcow2 overlay in
 * a private directory, the NICs (same MACs) sit on a transient isolated network (no forward,
 * no addresses, no DNS) so a first boot reaches nothing, and everything is removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { buildTargetDomainXml, type DomainDefinitionV2v } from '../hvtarget/domain.js';
import type { Logger } from '../log/logger.js';
import { scratchName } from '../node/scratch.js';
import { buildXml } from '../provisioning/libvirt/domain-xml-types.js';
import { DEFAULT_LIBVIRT_URI, Virsh } from '../provisioning/libvirt/virsh.js';
import type { CleanupStack } from '../run/cleanup.js';
import type { QemuImg } from '../storage/qemu-img.js';

/** What the serial console shows once a Linux guest's userspace is up. */
export const DEFAULT_BOOT_PATTERN =
  /(^|\n)\S+ login: |Reached target .*(Multi-User System|Graphical Interface)/;

export interface BootVerdict {
  booted: boolean;
  /** The text that matched. */
  matched?: string | undefined;
  seconds: number;
  /** Why it did not boot: timeout, the domain stopped. */
  reason?: string | undefined;
  /** The last lines of the serial console. */
  consoleTail: string;
}

export interface VerifyOptions {
  uri?: string | undefined;
  timeoutMs?: number | undefined;
  pattern?: RegExp | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  cleanup: CleanupStack;
  /** Told of each throwaway object as it is made, so a rerun after a crash can remove it. */
  record?: (r: {
    libvirt?: { domain?: string | undefined; network?: string | undefined };
    scratch?: string | undefined;
  }) => Promise<void>;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    // The listener goes with the timer: a long wait polls hundreds of times.
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** The throwaway copy of a domain: overlays, file console, isolated network, no VNC. */
export function throwawayDomain(
  def: DomainDefinitionV2v,
  name: string,
  overlays: string[],
  consoleLog: string,
  network: string | undefined,
): DomainDefinitionV2v {
  return {
    ...def,
    name,
    uuid: undefined,
    origin: undefined,
    uefi: def.uefi,
    disks: def.disks.map((d, i) => ({ ...d, path: overlays[i] as string, format: 'qcow2' })),
    nics: network ? def.nics.map((n) => ({ ...n, kind: 'network', source: network })) : [],
    serial: { type: 'file', path: consoleLog },
    vnc: false,
  };
}

/** The XML of a transient network with no forward, no addresses and no DNS. */
export function isolatedNetworkXml(name: string, bridge: string): string {
  return buildXml({
    network: {
      name,
      bridge: { '@_name': bridge, '@_stp': 'off' },
      dns: { '@_enable': 'no' },
    },
  });
}

export async function verifyBoot(
  qemu: QemuImg,
  def: DomainDefinitionV2v,
  opts: VerifyOptions,
): Promise<BootVerdict> {
  const node = qemu.node;
  const virsh = new Virsh(node, opts.uri ?? DEFAULT_LIBVIRT_URI);
  const id = randomBytes(4).toString('hex');
  const dir = scratchName('/var/tmp/v2v-load-verify-');
  await node.mkdir(dir, { mode: 0o700 });
  const dirHandle = opts.cleanup.defer(`remove ${dir}`, () =>
    node.remove(dir, { recursive: true }),
  );
  const steps = [dirHandle];
  const noted: { domain?: string; network?: string } = {};
  const note = async () => opts.record?.({ libvirt: { ...noted }, scratch: dir });
  await note();
  try {
    // QEMU runs as its own user: it must reach the overlays.
    await node.run(['chmod', '0755', dir]);
    const overlays: string[] = [];
    for (const [i, d] of def.disks.entries()) {
      const overlay = path.posix.join(dir, `disk${i}.qcow2`);
      await qemu
        .allowing(path.dirname(d.path))
        .create(
          { path: overlay, format: 'qcow2' },
          { backing: { path: d.path, format: d.format } },
        );
      overlays.push(overlay);
    }
    const consoleLog = path.posix.join(dir, 'console.log');
    let network: string | undefined;
    if (def.nics.length) {
      network = `v2v-load-verify-${id}`;
      noted.network = network;
      await note();
      const xml = isolatedNetworkXml(network, `v2vv${id}`);
      await virsh.withNodeFile('network.xml', xml, (f) =>
        virsh.run(['net-create', '--file', f], `create network ${network}`),
      );
      const net = network;
      steps.push(
        opts.cleanup.defer(`destroy network ${net}`, () =>
          virsh.run(['net-destroy', net], `destroy network ${net}`).then(() => {}),
        ),
      );
    }
    const name = `${def.name.slice(0, 40)}-verify-${id}`;
    noted.domain = name;
    await note();
    const xml = buildTargetDomainXml(throwawayDomain(def, name, overlays, consoleLog, network));
    await virsh.withNodeFile('domain.xml', xml, (f) =>
      virsh.run(['create', '--file', f], `start throwaway domain ${name}`),
    );
    steps.push(
      opts.cleanup.defer(`destroy throwaway domain ${name}`, () =>
        virsh.run(['destroy', name], `destroy domain ${name}`).then(
          () => {},
          () => {},
        ),
      ),
    );
    const pattern = opts.pattern ?? DEFAULT_BOOT_PATTERN;
    const timeoutMs = opts.timeoutMs ?? 300_000;
    const t0 = performance.now();
    let text = '';
    let polls = 0;
    for (;;) {
      const st = await node.stat(consoleLog);
      if (st) text = (await node.readFile(consoleLog)).toString('utf8');
      const m = pattern.exec(text);
      const seconds = Math.round((performance.now() - t0) / 100) / 10;
      if (m) return { booted: true, matched: m[0].trim(), seconds, consoleTail: tail(text) };
      if (performance.now() - t0 > timeoutMs) {
        return {
          booted: false,
          seconds,
          reason: `no userspace within ${timeoutMs / 1000} s`,
          consoleTail: tail(text),
        };
      }
      if (++polls % 5 === 0) {
        const state = await virsh.run(['domstate', name], `state of ${name}`).catch(() => 'gone');
        if (!/running|paused/.test(state)) {
          return {
            booted: false,
            seconds,
            reason: `the domain stopped (${state.trim()})`,
            consoleTail: tail(text),
          };
        }
      }
      await sleep(1000, opts.signal);
    }
  } finally {
    for (const h of steps.reverse()) await h.runNow();
  }
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
