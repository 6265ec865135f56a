/**
 * One libvirt domain: the Sys::Virt::Domain surface over `virsh` on a node. A domain is
 * addressed by its UUID (never ambiguous, unlike a name that looks like an id).
 */
import { XMLBuilder } from 'fast-xml-parser';
import { CommandError, CommandNotFoundError, UsageError, V2vError } from '../../errors.js';
import { parseUntrustedXml, textOf } from '../../formats/xml.js';
import { type DomainDescription, describeDomainXml } from './domain-xml-types.js';
import { isNotFound, toLibvirtError } from './errors.js';
import {
  type BlockInfo,
  type DomainInfo,
  type DomainStats,
  parseBlockInfo,
  parseDomInfo,
  parseDomStatsRaw,
  parseNameValueLines,
  parseVcpuCount,
  type VcpuCounts,
} from './parse.js';
import { SnapshotApi } from './snapshot.js';
import { type DomainState, isActiveState, parseDomState } from './state.js';
import type { Virsh } from './virsh.js';

/** A domain handle: plain data. `id` is set while the domain runs. */
export interface DomainHandle {
  name: string;
  uuid: string;
  id: number | undefined;
}

/** Our metadata namespace in domain XML (the provisioner records image name/revision). */
export const V2V_METADATA_NS = 'https://v2v-load.dev/xmlns/provisioning/1';
export const V2V_METADATA_PREFIX = 'v2vload';

/** Which definition a change applies to: the running one, the persistent one, or the current. */
export type ImpactFlag = 'live' | 'config' | 'current';

function impactArgs(impact: ImpactFlag | readonly ImpactFlag[] | undefined): string[] {
  if (impact === undefined) return [];
  return (Array.isArray(impact) ? impact : [impact]).map((f: ImpactFlag) => `--${f}`);
}

/** Flags of {@link Domain.undefine}. */
export interface UndefineFlags {
  /** Also remove snapshot metadata (needed when snapshots exist). */
  snapshotsMetadata?: boolean;
  /** Also remove a managed save image. */
  managedSave?: boolean;
  /** Also remove the NVRAM file (UEFI guests). */
  nvram?: boolean;
  /** Keep the NVRAM file. */
  keepNvram?: boolean;
  /** Also remove checkpoint metadata. */
  checkpointsMetadata?: boolean;
}

/** The shutdown/reboot methods libvirt can use. */
export type PowerMode = 'acpi' | 'agent' | 'initctl' | 'signal' | 'paravirt';

/** The keycodes of {@link Domain.sendKey}. */
export type KeycodeSet =
  | 'linux'
  | 'xt'
  | 'atset1'
  | 'atset2'
  | 'atset3'
  | 'os_x'
  | 'xt_kbd'
  | 'win32'
  | 'usb'
  | 'rfb'
  | 'qnum';

/** `python3 -c` program of {@link Domain.isUpdated}: argv[1] = URI, argv[2] = domain UUID. */
const IS_UPDATED_PY = [
  'import sys, libvirt',
  'conn = libvirt.open(sys.argv[1])',
  'print(conn.lookupByUUIDString(sys.argv[2]).isUpdated())',
].join('\n');

const metaBuilder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_' });

/** A libvirt domain on a connection. */
export class Domain {
  readonly snapshots: SnapshotApi;

  constructor(
    private readonly virsh: Virsh,
    /** The handle at lookup time (`id` may be stale: use {@link refresh}). */
    readonly handle: DomainHandle,
  ) {
    this.snapshots = new SnapshotApi(virsh, handle);
  }

  get name(): string {
    return this.handle.name;
  }

  get uuid(): string {
    return this.handle.uuid;
  }

  private get ref(): string {
    return this.handle.uuid;
  }

  private op(verb: string): string {
    return `${verb} domain ${JSON.stringify(this.handle.name)}`;
  }

  private run(args: readonly string[], verb: string, timeoutMs?: number): Promise<string> {
    const [cmd, ...rest] = args;
    return this.virsh.run(
      [cmd ?? '', '--domain', this.ref, ...rest],
      this.op(verb),
      timeoutMs === undefined ? {} : { timeoutMs },
    );
  }

  // ---- lifecycle ----

  /** Starts a defined domain. */
  async start(
    options: { paused?: boolean; forceBoot?: boolean; bypassCache?: boolean } = {},
  ): Promise<void> {
    const flags: string[] = [];
    if (options.paused) flags.push('--paused');
    if (options.forceBoot) flags.push('--force-boot');
    if (options.bypassCache) flags.push('--bypass-cache');
    await this.run(['start', ...flags], 'start');
  }

  /** Stops the domain at once (pulls the plug); `graceful` sends SIGTERM only, no SIGKILL. */
  async destroy(options: { graceful?: boolean } = {}): Promise<void> {
    await this.run(['destroy', ...(options.graceful ? ['--graceful'] : [])], 'destroy');
  }

  /** Asks the guest to shut down (ACPI power button by default); returns at once. */
  async shutdown(options: { mode?: PowerMode } = {}): Promise<void> {
    await this.run(['shutdown', ...(options.mode ? ['--mode', options.mode] : [])], 'shut down');
  }

  /** Asks the guest to reboot; returns at once. */
  async reboot(options: { mode?: PowerMode } = {}): Promise<void> {
    await this.run(['reboot', ...(options.mode ? ['--mode', options.mode] : [])], 'reboot');
  }

  /** Resets the virtual hardware (like the reset button), without asking the guest. */
  async reset(): Promise<void> {
    await this.run(['reset'], 'reset');
  }

  /** Pauses the domain's vCPUs. */
  async suspend(): Promise<void> {
    await this.run(['suspend'], 'suspend');
  }

  /** Resumes a paused domain. */
  async resume(): Promise<void> {
    await this.run(['resume'], 'resume');
  }

  /** Removes the persistent definition (a running domain becomes transient). */
  async undefine(flags: UndefineFlags = {}): Promise<void> {
    const args: string[] = [];
    if (flags.snapshotsMetadata) args.push('--snapshots-metadata');
    if (flags.managedSave) args.push('--managed-save');
    if (flags.nvram) args.push('--nvram');
    if (flags.keepNvram) args.push('--keep-nvram');
    if (flags.checkpointsMetadata) args.push('--checkpoints-metadata');
    await this.run(['undefine', ...args], 'undefine');
  }

  /** Saves the running domain's memory to `file` on the node and stops it. */
  async save(file: string, options: { running?: boolean; paused?: boolean } = {}): Promise<void> {
    const flags = [
      ...(options.running ? ['--running'] : []),
      ...(options.paused ? ['--paused'] : []),
    ];
    await this.run(['save', '--file', file, ...flags], `save to ${file}:`);
  }

  /** Saves the domain's memory into libvirt's managed save image and stops it. */
  async managedSave(): Promise<void> {
    await this.run(['managedsave'], 'managed-save');
  }

  /** True when a managed save image exists (the next start restores it). */
  async hasManagedSave(): Promise<boolean> {
    return (await this.getInfo()).managedSave;
  }

  /** Removes the managed save image. */
  async managedSaveRemove(): Promise<void> {
    await this.run(['managedsave-remove'], 'remove the managed save image of');
  }

  /** Dumps the domain's memory to `file` on the node (a core dump for crash analysis). */
  async coreDump(
    file: string,
    options: {
      memoryOnly?: boolean;
      live?: boolean;
      format?: 'elf' | 'kdump-zlib' | 'kdump-lzo' | 'kdump-snappy';
    } = {},
  ): Promise<void> {
    const flags: string[] = [];
    if (options.memoryOnly) flags.push('--memory-only');
    if (options.live) flags.push('--live');
    if (options.format) flags.push('--format', options.format);
    await this.run(['dump', '--file', file, ...flags], `dump core of`);
  }

  // ---- state ----

  /** State and reason, in libvirt's words. */
  async getState(): Promise<DomainState> {
    return parseDomState(await this.run(['domstate', '--reason'], 'read the state of'));
  }

  /** Memory, vCPUs, CPU time, state and flags (`virsh dominfo`). */
  async getInfo(): Promise<DomainInfo> {
    return parseDomInfo(await this.run(['dominfo'], 'read info of'), `dominfo of ${this.name}`);
  }

  /** The handle with the current id. */
  async refresh(): Promise<DomainHandle> {
    const info = await this.getInfo();
    this.handle.id = info.id;
    return { ...this.handle };
  }

  /** True while the domain runs (or is paused). */
  async isActive(): Promise<boolean> {
    return isActiveState((await this.getState()).state);
  }

  /** True when the domain has a persistent definition. */
  async isPersistent(): Promise<boolean> {
    return (await this.getInfo()).persistent;
  }

  /**
   * libvirt's isUpdated (virDomainIsUpdated): whether the domain was updated since it started.
   * virsh has no command for it, so the node's libvirt Python binding (python3-libvirt) asks
   * libvirt directly, on the same URI.
   */
  async isUpdated(): Promise<boolean> {
    const argv = ['/usr/bin/python3', '-c', IS_UPDATED_PY, this.virsh.uri, this.uuid];
    try {
      const r = await this.virsh.node.run(argv, { timeoutMs: 60_000, env: { LC_ALL: 'C' } });
      return r.stdout.trim() === '1';
    } catch (e) {
      if (
        e instanceof CommandNotFoundError ||
        (e instanceof CommandError && /No module named .?libvirt/.test(e.stderr))
      ) {
        throw new V2vError(
          `${this.op('check whether it was updated')}: needs the libvirt Python binding on ${this.virsh.node.name}`,
          { hint: 'install python3-libvirt on the node', cause: e },
        );
      }
      throw toLibvirtError(e, this.op('check whether it was updated'), this.virsh.where);
    }
  }

  /** The OS type, e.g. `hvm`. */
  async getOsType(): Promise<string> {
    return (await this.getInfo()).osType;
  }

  /** The guest's hostname (needs the QEMU guest agent: a `no-agent` LibvirtError without it). */
  async getHostname(): Promise<string> {
    return (await this.run(['domhostname'], 'read the hostname of')).trim();
  }

  // ---- XML ----

  /** The domain XML as libvirt prints it. */
  async getXml(
    options: { inactive?: boolean; securityInfo?: boolean; migratable?: boolean } = {},
  ): Promise<string> {
    const flags: string[] = [];
    if (options.inactive) flags.push('--inactive');
    if (options.securityInfo) flags.push('--security-info');
    if (options.migratable) flags.push('--migratable');
    return this.run(['dumpxml', ...flags], 'read XML of');
  }

  /** The domain XML, parsed into a typed object. */
  async getDescription(options: { inactive?: boolean } = {}): Promise<DomainDescription> {
    return describeDomainXml(await this.getXml(options), `XML of domain ${this.name}`);
  }

  /** Our metadata (key → text), or undefined when none was set. */
  async getMetadata(
    options: { impact?: ImpactFlag } = {},
  ): Promise<Record<string, string> | undefined> {
    let xml: string;
    try {
      xml = await this.run(
        ['metadata', '--uri', V2V_METADATA_NS, ...impactArgs(options.impact)],
        'read metadata of',
      );
    } catch (e) {
      if (isNotFound(e) && /metadata not found/i.test((e as Error).message)) return undefined;
      throw e;
    }
    const tree = parseUntrustedXml(xml, `metadata of domain ${this.name}`);
    const root = Object.values(tree)[0];
    const out: Record<string, string> = {};
    if (root && typeof root === 'object') {
      for (const [k, v] of Object.entries(root as Record<string, unknown>)) {
        if (k.startsWith('@_')) continue;
        out[k.replace(/^v2vload:/, '')] = textOf(v) ?? '';
      }
    }
    return out;
  }

  /** Sets our metadata (replacing what was there): one element per key. */
  async setMetadata(
    values: Record<string, string>,
    options: { impact?: ImpactFlag | ImpactFlag[] } = {},
  ): Promise<void> {
    for (const k of Object.keys(values)) {
      if (!/^[A-Za-z_][\w.-]*$/.test(k))
        throw new UsageError(`metadata key ${JSON.stringify(k)} is not an XML name`);
    }
    const xml = metaBuilder.build({ provisioning: values }) as string;
    await this.run(
      [
        'metadata',
        '--uri',
        V2V_METADATA_NS,
        '--key',
        V2V_METADATA_PREFIX,
        '--set',
        xml,
        ...impactArgs(options.impact),
      ],
      'set metadata of',
    );
  }

  /** Removes our metadata. */
  async removeMetadata(options: { impact?: ImpactFlag | ImpactFlag[] } = {}): Promise<void> {
    await this.run(
      [
        'metadata',
        '--uri',
        V2V_METADATA_NS,
        '--key',
        V2V_METADATA_PREFIX,
        '--remove',
        ...impactArgs(options.impact),
      ],
      'remove metadata of',
    );
  }

  // ---- resources ----

  /** Sets the maximum memory (KiB). */
  async setMaxMemory(kib: number, impact?: ImpactFlag | ImpactFlag[]): Promise<void> {
    await this.run(
      ['setmaxmem', '--size', `${kib}KiB`, ...impactArgs(impact)],
      'set max memory of',
    );
  }

  /** Sets the current memory (KiB, balloon). */
  async setMemory(kib: number, impact?: ImpactFlag | ImpactFlag[]): Promise<void> {
    await this.run(['setmem', '--size', `${kib}KiB`, ...impactArgs(impact)], 'set memory of');
  }

  /** vCPU counts: maximum and current, of the config and (while running) live. */
  async getVcpus(): Promise<VcpuCounts> {
    return parseVcpuCount(await this.run(['vcpucount'], 'read vCPU counts of'));
  }

  /** Sets the vCPU count (`maximum`: the maximum, config only). */
  async setVcpus(
    count: number,
    options: { maximum?: boolean; impact?: ImpactFlag | ImpactFlag[] } = {},
  ): Promise<void> {
    await this.run(
      [
        'setvcpus',
        '--count',
        String(count),
        ...(options.maximum ? ['--maximum'] : []),
        ...impactArgs(options.impact),
      ],
      'set vCPUs of',
    );
  }

  /** Capacity, allocation and physical size (bytes) of a disk (`vda` or its path). */
  async blockInfo(device: string): Promise<BlockInfo> {
    return parseBlockInfo(
      await this.run(['domblkinfo', '--device', device], `read block info of ${device} of`),
    );
  }

  /** Resizes a disk of a running domain to `bytes`. */
  async blockResize(device: string, bytes: number): Promise<void> {
    await this.run(['blockresize', '--path', device, '--size', `${bytes}B`], `resize ${device} of`);
  }

  /** Block I/O counters of a disk (rd_req, rd_bytes, wr_req, ...). */
  async blockStats(device: string): Promise<Record<string, number | string>> {
    return parseNameValueLines(
      await this.run(['domblkstat', '--device', device], `read block stats of ${device} of`),
    );
  }

  /** Interface counters (rx_bytes, tx_bytes, ...) of a NIC (its target dev or MAC). */
  async interfaceStats(iface: string): Promise<Record<string, number | string>> {
    return parseNameValueLines(
      await this.run(['domifstat', '--interface', iface], `read interface stats of ${iface} of`),
    );
  }

  /** Balloon memory stats (actual, rss, ...; KiB). */
  async memoryStats(): Promise<Record<string, number | string>> {
    return parseNameValueLines(await this.run(['dommemstat'], 'read memory stats of'));
  }

  /** All of `virsh domstats --raw` for this domain, key → value. */
  async stats(): Promise<DomainStats> {
    const all = parseDomStatsRaw(
      await this.virsh.run(['domstats', '--raw', this.ref], this.op('read stats of')),
    );
    return [...all.values()][0] ?? new Map();
  }

  /** True when the domain starts with libvirtd. */
  async getAutostart(): Promise<boolean> {
    return (await this.getInfo()).autostart;
  }

  /** Sets whether the domain starts with libvirtd. */
  async setAutostart(on: boolean): Promise<void> {
    await this.run(['autostart', ...(on ? [] : ['--disable'])], 'set autostart of');
  }

  private async deviceOp(
    verb: 'attach-device' | 'detach-device' | 'update-device',
    xml: string,
    impact?: ImpactFlag | ImpactFlag[],
  ): Promise<void> {
    await this.virsh.withNodeFile('device.xml', xml, (file) =>
      this.run(
        [verb, '--file', file, ...impactArgs(impact)],
        `${verb.replace('-device', '')} a device to`,
      ),
    );
  }

  /** Attaches a device given as XML (written to a file on the node first). */
  attachDevice(xml: string, impact?: ImpactFlag | ImpactFlag[]): Promise<void> {
    return this.deviceOp('attach-device', xml, impact);
  }

  /** Detaches a device given as XML. */
  detachDevice(xml: string, impact?: ImpactFlag | ImpactFlag[]): Promise<void> {
    return this.deviceOp('detach-device', xml, impact);
  }

  /** Updates a device (e.g. changes the media of a cdrom) given as XML. */
  updateDevice(xml: string, impact?: ImpactFlag | ImpactFlag[]): Promise<void> {
    return this.deviceOp('update-device', xml, impact);
  }

  private async params(
    verb: 'schedinfo' | 'blkiotune' | 'memtune',
    set: Record<string, number | string>,
    impact?: ImpactFlag | ImpactFlag[],
  ): Promise<Record<string, number | string>> {
    const args: string[] = [];
    for (const [k, v] of Object.entries(set)) {
      if (!/^[a-z_]+$/.test(k))
        throw new UsageError(`${verb} parameter ${JSON.stringify(k)} is not a parameter name`);
      args.push(
        verb === 'schedinfo' ? '--set' : `--${k.replace(/_/g, '-')}`,
        verb === 'schedinfo' ? `${k}=${v}` : String(v),
      );
    }
    if (args.length) {
      await this.run([verb, ...args, ...impactArgs(impact)], `set ${verb} parameters of`);
    }
    const readImpact = Array.isArray(impact) ? undefined : impact;
    return parseNameValueLines(
      await this.run([verb, ...impactArgs(readImpact)], `read ${verb} parameters of`),
    );
  }

  /** Scheduler parameters (cpu_shares, vcpu_period, ...); sets the given ones first. */
  schedulerParameters(
    set: Record<string, number> = {},
    impact?: ImpactFlag | ImpactFlag[],
  ): Promise<Record<string, number | string>> {
    return this.params('schedinfo', set, impact);
  }

  /** Block I/O tuning (weight, ...); sets the given ones first. */
  blkioParameters(
    set: Record<string, number | string> = {},
    impact?: ImpactFlag | ImpactFlag[],
  ): Promise<Record<string, number | string>> {
    return this.params('blkiotune', set, impact);
  }

  /** Memory tuning (hard_limit, soft_limit, swap_hard_limit; KiB); sets the given ones first. */
  memoryParameters(
    set: Record<string, number | string> = {},
    impact?: ImpactFlag | ImpactFlag[],
  ): Promise<Record<string, number | string>> {
    return this.params('memtune', set, impact);
  }

  /** Sends key presses, e.g. ['KEY_LEFTCTRL', 'KEY_LEFTALT', 'KEY_DELETE']. */
  async sendKey(
    keys: readonly string[],
    options: { codeset?: KeycodeSet; holdtimeMs?: number } = {},
  ): Promise<void> {
    for (const k of keys)
      if (!/^[\w]+$/.test(k))
        throw new UsageError(`key ${JSON.stringify(k)} is not a key name or code`);
    await this.run(
      [
        'send-key',
        ...(options.codeset ? ['--codeset', options.codeset] : []),
        ...(options.holdtimeMs ? ['--holdtime', String(options.holdtimeMs)] : []),
        ...keys,
      ],
      'send keys to',
    );
  }
}
