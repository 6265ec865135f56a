/**
 * The VCL provisioning module (VCL's libvirt.pm with its KVM.pm driver) on a local or SSH
 * node: load, capture, node_status, the power verbs, image queries, snapshots, and libvirt.pm's
 * private helpers. Read {@link VclProvisioner.load} first: the load's steps in order, each
 * registering the undo of what it made; a failure rolls back exactly that.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { inject, injectAll, injectable } from 'tsyringe';
import { TOKENS } from '../di/tokens.js';
import { V2vError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import { CleanupStack } from '../run/cleanup.js';
import { StorageError } from '../storage/errors.js';
import type { ImageRef } from '../storage/image-format.js';
import type { MasterCache } from '../storage/master-cache.js';
import { QemuImg } from '../storage/qemu-img.js';
import {
  doesImageExist,
  findImageIn,
  findInRepository,
  type ImageFiles,
  imageSize,
} from '../storage/repository.js';
import {
  type ConversionRecord,
  conversionRecordIn,
  readConversionRecord,
  writeConversionRecord,
} from './conversion-record.js';
import {
  buildLoadDomainXml,
  generateDomainDefinition,
  type LoadRecord,
  loadRecordFrom,
  loadRecordValues,
  type RecordedHardware,
  recordedHardware,
} from './domain-xml.js';
import { chooseDriver, type DriverContext, type HypervisorDriver } from './drivers/driver.js';
import { parseCapabilities } from './libvirt/capabilities.js';
import { LibvirtConnection } from './libvirt/connection.js';
import { Domain } from './libvirt/domain.js';
import { describeDomainXml } from './libvirt/domain-xml-types.js';
import { isNotFound, isOperationInvalid } from './libvirt/errors.js';
import { parseDomStatsRaw } from './libvirt/parse.js';
import type { SnapshotInfo } from './libvirt/snapshot.js';
import {
  type DomainStateName,
  isActiveState,
  parseDomState,
  stateFromCodes,
} from './libvirt/state.js';
import type { MasterConversion, MasterConversionResult } from './master-conversion.js';
import {
  consoleLogPath,
  conversionRecordFilePath,
  copyOnWriteFilePath,
  diskFileName,
  domainFileBaseName,
  domainName,
  domainXmlDirectoryPath,
  domainXmlFilePath,
  isComputerDomain,
  masterImageDirectoryPath,
  masterImageFilePath,
  masterXmlFilePath,
  newImageName,
  repositorySearchPaths,
} from './naming.js';
import { takeNodeLock } from './node-lock.js';
import { AgentNode } from './remote-agent.js';
import type { Reservation } from './reservation.js';

/** The steps of a load, in order (a failure hook may stop the load after any of them). */
export const LOAD_STEPS = [
  'lock',
  'initialize',
  'delete-existing',
  'master',
  'cow',
  'generate-xml',
  'write-xml',
  'define',
  'start',
  'post-load',
] as const;
export type LoadStep = (typeof LOAD_STEPS)[number];

/** Hooks into the provisioner (tests inject failures; the default has none). */
export interface ProvisionerHooks {
  /** Called after each load step; a throw fails the load there (and rolls it back). */
  afterLoadStep?(step: LoadStep, res: Reservation): void | Promise<void>;
}

/** Converts a repository image into a master (bound to the run's Converter). */
export type ConvertMasterFn = (job: MasterConversion) => Promise<MasterConversionResult>;

/** Makes or finds the master cache of a node (one per node and process). */
export type MasterCacheFor = (qemu: QemuImg) => MasterCache;

/** The default post_load pattern: a login prompt on the serial console. */
export const DEFAULT_READY_PATTERN = String.raw`(^|\n)[^\n]*login: *$`;

/** A provisioning operation failed (the message names the computer, domain or image). */
export class ProvisioningError extends V2vError {
  override readonly code: string = 'PROVISIONING_FAILED';
}

/** The guest did not show its ready pattern in time. */
export class PostLoadTimeoutError extends ProvisioningError {
  override readonly code = 'POST_LOAD_TIMEOUT';
}

/** VCL's power states. */
export type PowerStatus = 'on' | 'off' | 'suspended';

/** Every libvirt state as VCL's power status. */
export const POWER_OF_STATE: Record<DomainStateName, PowerStatus> = {
  running: 'on',
  idle: 'on',
  'in shutdown': 'on',
  paused: 'suspended',
  pmsuspended: 'suspended',
  'shut off': 'off',
  crashed: 'off',
  'no state': 'off',
};

/** A domain in {@link VclProvisioner.getDomainInfo}. */
export interface DomainInfoEntry {
  uuid: string;
  id?: number | undefined;
  state: DomainStateName;
}

/** What node_status found. */
export interface NodeStatusResult {
  status: 'READY' | 'POST_LOAD' | 'RELOAD';
  domain: string | undefined;
  state: DomainStateName | undefined;
  image: string | undefined;
  revision: number | undefined;
  postLoadRan: boolean;
  reachable: boolean;
  reason: string;
}

/** What a load did. */
export interface LoadResult {
  domain: string;
  uuid: string;
  driver: string;
  domainType: string;
  master: string;
  masterCopied: boolean;
  /** True when this load converted the master (the v2v pipeline, the Windows registry). */
  masterConverted: boolean;
  /** Every disk of the master (`master` first). */
  masters: string[];
  /** The COW image of the first disk. */
  cow: string;
  /** The COW image of each disk (`cow` first). */
  cows: string[];
  xmlFile: string;
  consoleLog: string;
  postLoad: { waited: boolean; seconds: number | undefined };
  /** Commands the load ran on the node. */
  nodeCommands: number;
  ms: number;
}

/** What a capture made. */
export interface CaptureResult {
  image: string;
  domain: string;
  /** The new master (its first disk). */
  master: string;
  /** Every disk of the new master, in the domain's order (`master` first). */
  masters: string[];
  xml: string;
  /** The copies in the repository (`image` = the first disk's). */
  repository: { image: string; disks: string[]; xml: string } | undefined;
  /** Bytes of the new master's disks in the datastore. */
  bytes: number;
  shutdown: 'graceful' | 'destroyed' | 'was-off';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts the commands and file operations run on a node (for `nodeCommands`). */
function countingNode(node: Node, counter: { n: number }): Node {
  return new Proxy(node, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...args: unknown[]) => {
        counter.n++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

@injectable()
export class VclProvisioner {
  private chosen: { driver: HypervisorDriver; refused: Record<string, string> } | undefined;
  private domainTypesMemo: Promise<string[]> | undefined;
  private readonly counter = { n: 0 };
  private readonly node: Node;

  constructor(
    @inject(TOKENS.Node) node: Node,
    @inject(TOKENS.QemuImg) qemu: QemuImg,
    @inject(TOKENS.LibvirtConnection) conn: LibvirtConnection,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Cleanup) private readonly cleanup: CleanupStack,
    @injectAll(TOKENS.HypervisorDriver) private readonly drivers: HypervisorDriver[],
    @inject(TOKENS.MasterCacheFor) private readonly mastersFor: MasterCacheFor,
    @inject(TOKENS.ConvertMaster) private readonly convertMaster: ConvertMasterFn,
    @inject(TOKENS.ProvisionerHooks) private readonly hooks: ProvisionerHooks,
  ) {
    // On an SSH node, commands go through one agent process instead of one login shell each.
    if (!node.isLocal) {
      const agent = new AgentNode(node, log);
      this.agent = agent;
      cleanup.defer(`stop the command agent on ${node.name}`, () => agent.stop());
      node = agent;
    }
    this.node = countingNode(node, this.counter);
    this.qemu = new QemuImg(this.node, qemu.allowedDirs);
    this.conn = new LibvirtConnection(this.node, conn.uri);
  }

  private readonly qemu: QemuImg;
  private readonly conn: LibvirtConnection;

  private readonly agent: AgentNode | undefined;

  /** Stops the command agent on an SSH node (the run's cleanup does it too). */
  async dispose(): Promise<void> {
    await this.agent?.stop();
  }

  /** Commands that went through the agent instead of a login shell each. */
  get agentRuns(): number {
    return this.agent?.agentRuns ?? 0;
  }

  /** Commands and file operations run on the node so far (virsh and qemu-img included). */
  get nodeCommands(): number {
    return this.counter.n;
  }

  // ---------------------------------------------------------------- initialize

  private context(res: Reservation): DriverContext {
    let recorded: Promise<RecordedHardware> | undefined;
    const domainType = () => this.chosen?.driver.domainType ?? 'qemu';
    return {
      node: this.node,
      conn: this.conn,
      qemu: this.qemu,
      res,
      log: this.log,
      masters: this.mastersFor(this.qemu),
      domainTypes: () => {
        this.domainTypesMemo ??= this.conn.domainTypes();
        return this.domainTypesMemo;
      },
      convertMaster: async (found: ImageFiles) =>
        (
          await this.convertMaster({
            kind: 'vmware-image',
            found,
            target: masterImageFilePath(res),
            extraTarget: (n) => masterImageFilePath(res, res.image.name, n),
            targetXml: masterXmlFilePath(res),
            targetRecord: conversionRecordFilePath(res),
            image: res.image.name,
            domainType: domainType(),
            virtioWin: res.vmhost.virtioWinPath ?? undefined,
          })
        ).converted,
      prepareWindowsMaster: async (copy: ImageRef, found: ImageFiles) =>
        (
          await this.convertMaster({
            kind: 'windows-copy',
            copy,
            found,
            targetRecord: conversionRecordFilePath(res),
            image: res.image.name,
            domainType: domainType(),
            virtioWin: res.vmhost.virtioWinPath ?? undefined,
          })
        ).converted,
      recordedHardware: () => {
        recorded ??= this.recordedHardwareOf(res);
        return recorded;
      },
    };
  }

  /**
   * VCL's initialize: asks each driver, in order, whether it serves the node; the first that
   * does is used. @throws ProvisioningError with each driver's reason when none does
   */
  async initialize(
    res: Reservation,
  ): Promise<{ driver: string; domainType: string; refused: Record<string, string> }> {
    if (!this.chosen) {
      const { driver, refused } = await chooseDriver(this.drivers, this.context(res));
      if (!driver) {
        const why = Object.entries(refused)
          .map(([d, r]) => `${d}: ${r}`)
          .join('; ');
        throw new ProvisioningError(`no hypervisor driver serves ${this.node.name}: ${why}`, {
          hint: 'install qemu-system-x86 and libvirt on the node (and check vmhost.domainType)',
        });
      }
      this.chosen = { driver, refused };
    }
    return {
      driver: this.chosen.driver.name,
      domainType: this.chosen.driver.domainType,
      refused: this.chosen.refused,
    };
  }

  private async driver(res: Reservation): Promise<HypervisorDriver> {
    await this.initialize(res);
    return (this.chosen as { driver: HypervisorDriver }).driver;
  }

  /** VCL's get_driver_name. */
  async getDriverName(res: Reservation): Promise<string> {
    return (await this.driver(res)).name;
  }

  // ---------------------------------------------------------------- load

  /**
   * VCL's load: the computer's existing domains go (destroyed, snapshots, its own disks,
   * undefined); the master is made present and the COW image over it; the domain XML is
   * generated, written on the node, defined and started; post_load waits until the guest shows
   * the ready pattern on its serial console and records that in the domain's metadata.
   * Any failure rolls back what this load made; a second load of the same computer waits for
   * the first (`args.lockWaitSeconds`, default 30) and then fails clearly.
   */
  async load(res: Reservation): Promise<LoadResult> {
    const t0 = performance.now();
    const n0 = this.counter.n;
    const computer = res.computer.shortName;
    const step = async (s: LoadStep) => {
      this.log.debug(`load ${computer}: ${s} done`);
      await this.hooks.afterLoadStep?.(s, res);
    };
    const lock = await takeNodeLock(
      this.node,
      path.posix.join(res.vmhost.vmPath, `.${computer}.load.lock`),
      `load of ${computer}`,
      { waitMs: (res.args.lockWaitSeconds ?? 30) * 1000 },
    );
    // What this load made, undone in reverse on failure (or when the run is interrupted).
    const undo = new CleanupStack(this.log);
    const onInterrupt = this.cleanup.defer(`roll back the load of ${computer}`, () => undo.run());
    try {
      await step('lock');
      // one virsh run: the domains (for delete-existing) and, the first time, the capabilities
      const domains = await this.listDomainNames(!this.domainTypesMemo && !res.vmhost.domainType);
      const driver = await this.driver(res);
      await step('initialize');
      await this.deleteExistingDomains(res, domains);
      await step('delete-existing');

      const ctx = this.context(res);
      const prepared = await driver.preDefine(ctx, {
        masterReady: () => step('master'),
        cowCreated: (cow) => {
          undo.defer(`remove ${cow}`, () => this.node.remove(cow));
        },
      });
      await step('cow');

      const name = domainName(res);
      const uuid = randomUUID();
      const consoleLog = consoleLogPath(res, name);
      const recorded = await ctx.recordedHardware();
      const record: LoadRecord = {
        imageId: res.image.id,
        imageName: res.image.name,
        imageRevision: res.image.revision,
        computerId: res.computer.id,
        computerName: computer,
        reservationId: res.reservation.id,
        loadedAt: new Date().toISOString(),
      };
      const def = generateDomainDefinition(res, {
        name,
        type: driver.domainType,
        disks: prepared.disks,
        consoleLog,
        recorded,
      });
      def.uuid = uuid;
      driver.extendDomain?.(def, ctx);
      const xml = buildLoadDomainXml(def, record, recorded.kernelBoot);
      await step('generate-xml');

      const xmlFile = domainXmlFilePath(res);
      if (!(await this.node.stat(domainXmlDirectoryPath()))) {
        await this.node.mkdir(domainXmlDirectoryPath(), { recursive: true, mode: 0o700 });
      }
      undo.defer(`remove ${xmlFile}`, () => this.node.remove(xmlFile));
      await this.node.writeFileAtomic(xmlFile, xml, { mode: 0o600 });
      await step('write-xml');

      undo.defer(`remove ${consoleLog}`, () => this.node.remove(consoleLog));
      await this.node.remove(consoleLog);
      undo.defer(`undefine domain ${name}`, () =>
        this.conn.virsh
          .run(
            ['undefine', '--domain', uuid, '--snapshots-metadata', '--managed-save'],
            `undefine domain ${name}`,
          )
          .then(
            () => {},
            (e: unknown) => {
              if (!isNotFound(e)) throw e;
            },
          ),
      );
      // define and start in one virsh run (the undo steps are harmless if either failed)
      undo.defer(`destroy domain ${name}`, () =>
        this.conn.virsh.run(['destroy', '--domain', uuid], `destroy domain ${name}`).then(
          () => {},
          (e: unknown) => {
            if (!isOperationInvalid(e) && !isNotFound(e)) throw e;
          },
        ),
      );
      await this.conn.virsh.batch(
        [
          ['define', '--file', xmlFile],
          ['start', '--domain', uuid],
        ],
        `define and start domain ${name}`,
      );
      const dom = new Domain(this.conn.virsh, { name, uuid, id: undefined });
      await step('define');
      await step('start');

      let seconds: number | undefined;
      if (res.postLoad.wait) {
        seconds = await this.waitReady(res, dom, consoleLog);
        await dom.setMetadata(
          loadRecordValues({ ...record, postLoadAt: new Date().toISOString() }),
          {
            impact: ['live', 'config'],
          },
        );
      }
      await step('post-load');
      onInterrupt.dismiss();
      return {
        domain: name,
        uuid,
        driver: driver.name,
        domainType: driver.domainType,
        master: prepared.master,
        masterCopied: prepared.masterCopied,
        masterConverted: prepared.masterConverted,
        masters: prepared.masters,
        cow: prepared.disks[0]?.path ?? '',
        cows: prepared.disks.map((d) => d.path),
        xmlFile,
        consoleLog,
        postLoad: { waited: res.postLoad.wait, seconds },
        nodeCommands: this.counter.n - n0,
        ms: Math.round(performance.now() - t0),
      };
    } catch (e) {
      this.log.warn(`load of ${computer} failed; rolling back what it made`);
      onInterrupt.dismiss();
      await undo.run();
      throw e;
    } finally {
      await lock.release().catch(() => {});
    }
  }

  /**
   * The hardware the image's recorded domain XML describes (datastore, then repository), with
   * the devices its conversion record says the conversion chose.
   */
  private async recordedHardwareOf(res: Reservation): Promise<RecordedHardware> {
    const conversion = await readConversionRecord(this.node, conversionRecordFilePath(res));
    const hw = await this.recordedXmlHardware(res);
    return { ...hw, ...conversion?.devices };
  }

  private async recordedXmlHardware(res: Reservation): Promise<RecordedHardware> {
    const candidates = [masterXmlFilePath(res)];
    const repo = res.vmhost.repositoryPath;
    if (repo) {
      candidates.push(
        path.posix.join(repo, res.image.name, `${res.image.name}.xml`),
        path.posix.join(repo, `${res.image.name}.xml`),
      );
    }
    for (const f of candidates) {
      const text = await this.node.readFile(f).catch(() => undefined);
      if (text) return recordedHardware(text.toString('utf8'), f);
    }
    return {};
  }

  /** post_load: polls the serial console log for the ready pattern. @returns seconds waited */
  private async waitReady(res: Reservation, dom: Domain, consoleLog: string): Promise<number> {
    const re = new RegExp(res.postLoad.pattern ?? DEFAULT_READY_PATTERN, 'm');
    const t0 = Date.now();
    const deadline = t0 + res.postLoad.timeoutSeconds * 1000;
    let lastStateCheck = t0;
    let text = '';
    for (;;) {
      text = (await this.node.readFile(consoleLog).catch(() => Buffer.alloc(0))).toString('utf8');
      if (re.test(text)) return Math.round((Date.now() - t0) / 100) / 10;
      if (Date.now() - lastStateCheck > 5000) {
        lastStateCheck = Date.now();
        const st = await dom.getState();
        if (!isActiveState(st.state)) {
          throw new ProvisioningError(
            `post_load of ${dom.name}: the domain stopped (${st.state}, ${st.reason}) before its console showed /${re.source}/`,
            { hint: `read ${consoleLog} on ${this.node.name}` },
          );
        }
      }
      if (Date.now() > deadline) {
        const tail = text.trimEnd().split('\n').slice(-5).join(' | ');
        throw new PostLoadTimeoutError(
          `post_load of ${dom.name}: no /${re.source}/ on its serial console within ${res.postLoad.timeoutSeconds} s (last lines: ${tail || 'none'})`,
          {
            hint: 'raise postLoad.timeoutSeconds, or set postLoad.pattern to what the guest prints when it is up',
          },
        );
      }
      await sleep(500);
    }
  }

  // ---------------------------------------------------------------- domains

  /** Every domain on the node: name → {uuid, state} (VCL's get_domain_info), in one virsh run. */
  async getDomainInfo(): Promise<Record<string, DomainInfoEntry>> {
    return this.listDomains(false);
  }

  /**
   * The domains and their states, and with `withCapabilities` libvirt's domain types too
   * (memoized for the drivers): one virsh process for all of it.
   */
  private async listDomains(withCapabilities: boolean): Promise<Record<string, DomainInfoEntry>> {
    const cmds = [
      ['list', '--all', '--uuid', '--name'],
      ['domstats', '--raw', '--state'],
    ];
    if (withCapabilities) cmds.push(['capabilities']);
    const [list = '', stats = '', caps] = await this.conn.virsh.batch(cmds, 'list domains');
    if (caps !== undefined) this.rememberCapabilities(caps);
    const stateOf = parseDomStatsRaw(stats);
    const out: Record<string, DomainInfoEntry> = {};
    for (const line of list.split('\n')) {
      const m = /^([0-9a-f-]{36}) (.*)$/i.exec(line);
      if (!m?.[1] || m[2] === undefined) continue;
      const s = stateOf.get(m[2]);
      if (!s) continue;
      const { state } = stateFromCodes(Number(s.get('state.state')), Number(s.get('state.reason')));
      out[m[2]] = { uuid: m[1].toLowerCase(), state };
    }
    return out;
  }

  /**
   * The domains' names and UUIDs only (their states are read for the computer's own, when
   * they are deleted), and with `withCapabilities` the domain types: one virsh run.
   */
  private async listDomainNames(
    withCapabilities: boolean,
  ): Promise<Record<string, { uuid: string; state?: DomainStateName }>> {
    const cmds = [['list', '--all', '--uuid', '--name']];
    if (withCapabilities) cmds.push(['capabilities']);
    const [list = '', caps] = await this.conn.virsh.batch(cmds, 'list domains');
    if (caps !== undefined) this.rememberCapabilities(caps);
    const out: Record<string, { uuid: string }> = {};
    for (const line of list.split('\n')) {
      const m = /^([0-9a-f-]{36}) (.*)$/i.exec(line);
      if (m?.[1] && m[2] !== undefined) out[m[2]] = { uuid: m[1].toLowerCase() };
    }
    return out;
  }

  private rememberCapabilities(caps: string): void {
    const host = parseCapabilities(
      caps,
      `virsh -c ${this.conn.uri} capabilities on ${this.node.name}`,
    );
    this.domainTypesMemo = Promise.resolve(
      host.guests.find((g) => g.osType === 'hvm' && g.arch === 'x86_64')?.domainTypes ?? [],
    );
  }

  private domainOf(name: string, e: DomainInfoEntry): Domain {
    return new Domain(this.conn.virsh, { name, uuid: e.uuid, id: e.id });
  }

  private async domainNamed(name: string): Promise<Domain> {
    const info = await this.getDomainInfo();
    const e = info[name];
    if (!e) {
      throw new ProvisioningError(
        `no domain named ${JSON.stringify(name)} on ${this.conn.virsh.where}`,
        {
          hint: 'list them with `v2v-load vcl get_domain_info`',
        },
      );
    }
    return this.domainOf(name, e);
  }

  /** VCL's domain_exists. */
  async domainExists(name: string): Promise<boolean> {
    return name in (await this.getDomainInfo());
  }

  /** VCL's get_domain_xml: the XML as libvirt prints it. */
  async getDomainXml(name: string): Promise<string> {
    return (await this.domainNamed(name)).getXml();
  }

  /**
   * The computer's domain: `args.domainName` when given, else the one named by VCL's rule,
   * else the only (or the only running) domain made for the computer. Undefined when none.
   */
  async activeDomain(
    res: Reservation,
    explicit = res.args.domainName,
  ): Promise<Domain | undefined> {
    const info = await this.getDomainInfo();
    if (explicit) return info[explicit] ? this.domainOf(explicit, info[explicit]) : undefined;
    const own = domainName(res);
    if (info[own]) return this.domainOf(own, info[own]);
    const mine = Object.entries(info).filter(([n]) => isComputerDomain(n, res.computer.shortName));
    const running = mine.filter(([, e]) => isActiveState(e.state));
    const pick = mine.length === 1 ? mine[0] : running.length === 1 ? running[0] : undefined;
    if (!pick && mine.length > 1) {
      throw new ProvisioningError(
        `computer ${res.computer.shortName} has ${mine.length} domains (${mine.map(([n]) => n).join(', ')}); which one is meant is unclear`,
        { hint: 'name it in args.domainName' },
      );
    }
    return pick ? this.domainOf(pick[0], pick[1]) : undefined;
  }

  /** VCL's delete_existing_domains: every domain of the computer, and its XML files. */
  async deleteExistingDomains(
    res: Reservation,
    known?: Record<string, { uuid: string; state?: DomainStateName }>,
  ): Promise<string[]> {
    const info = known ?? (await this.getDomainInfo());
    const deleted: string[] = [];
    for (const [name, e] of Object.entries(info)) {
      if (!isComputerDomain(name, res.computer.shortName)) continue;
      await this.deleteDomainEntry(res, name, e);
      deleted.push(name);
    }
    const dir = domainXmlDirectoryPath();
    for (const f of await this.node.list(dir).catch(() => [])) {
      if (
        f.type === 'file' &&
        f.name.endsWith('.xml') &&
        isComputerDomain(f.name, res.computer.shortName)
      ) {
        await this.node.remove(path.posix.join(dir, f.name));
      }
    }
    return deleted;
  }

  /** VCL's delete_domain: destroyed, snapshots deleted, undefined, its own disks removed. */
  async deleteDomain(res: Reservation, name: string): Promise<boolean> {
    const e = (await this.getDomainInfo())[name];
    if (!e) return false;
    await this.deleteDomainEntry(res, name, e);
    return true;
  }

  private async deleteDomainEntry(
    res: Reservation,
    name: string,
    e: { uuid: string; state?: DomainStateName },
  ): Promise<void> {
    const op = `delete domain ${JSON.stringify(name)}`;
    // two virsh runs: what it has (disks, snapshots, state), then destroy + snapshots + undefine
    const [xml = '', snaps = '', st = ''] = await this.conn.virsh.batch(
      [
        ['dumpxml', '--domain', e.uuid, '--inactive'],
        ['snapshot-list', '--domain', e.uuid, '--name'],
        ['domstate', '--domain', e.uuid, '--reason'],
      ],
      op,
    );
    const desc = describeDomainXml(xml, `XML of domain ${name}`);
    const state = parseDomState(st).state;
    const cmds: string[][] = [];
    if (isActiveState(state)) cmds.push(['destroy', '--domain', e.uuid]);
    for (const snap of snaps.split('\n').filter((l) => l.trim() !== '')) {
      cmds.push(['snapshot-delete', '--domain', e.uuid, '--snapshotname', snap.trim()]);
    }
    cmds.push(['undefine', '--domain', e.uuid, '--snapshots-metadata', '--managed-save']);
    await this.conn.virsh.batch(cmds, op);
    // Only the computer's own files: named after it, in the VM or datastore directory. A
    // master (or anything else a domain may point at) is never removed.
    const own = [res.vmhost.vmPath, res.vmhost.datastorePath];
    for (const d of desc.disks) {
      const src = d.source;
      if (!src || d.device !== 'disk') continue;
      if (!own.includes(path.posix.dirname(src))) continue;
      if (!isComputerDomain(path.posix.basename(src), res.computer.shortName)) continue;
      await this.node.remove(src);
    }
    await this.node.remove(path.posix.join(res.vmhost.vmPath, `${name}.console.log`));
  }

  /** VCL's generate_domain_xml (the disks at their load paths; nothing is made). */
  async generateDomainXml(res: Reservation): Promise<string> {
    const driver = await this.driver(res);
    const name = domainName(res);
    const recorded = await this.recordedHardwareOf(res);
    const def = generateDomainDefinition(res, {
      name,
      type: driver.domainType,
      disks: Array.from({ length: recorded.diskCount ?? 1 }, (_, n) => ({
        path: copyOnWriteFilePath(res, n),
        format: 'qcow2' as const,
      })),
      consoleLog: consoleLogPath(res, name),
      recorded,
    });
    driver.extendDomain?.(def, this.context(res));
    return buildLoadDomainXml(
      def,
      {
        imageId: res.image.id,
        imageName: res.image.name,
        imageRevision: res.image.revision,
        computerId: res.computer.id,
        computerName: res.computer.shortName,
        reservationId: res.reservation.id,
        loadedAt: new Date(0).toISOString(),
      },
      recorded.kernelBoot,
    );
  }

  // ---------------------------------------------------------------- status and power

  /** VCL's node_status: READY, POST_LOAD or RELOAD, and why. */
  async nodeStatus(res: Reservation): Promise<NodeStatusResult> {
    const none = {
      domain: undefined,
      state: undefined,
      image: undefined,
      revision: undefined,
      postLoadRan: false,
      reachable: false,
    };
    const dom = await this.activeDomain(res);
    if (!dom)
      return {
        status: 'RELOAD',
        ...none,
        reason: `no domain of computer ${res.computer.shortName}`,
      };
    const [st, meta] = await Promise.all([
      dom.getState(),
      dom.getMetadata().catch(() => undefined),
    ]);
    const rec = loadRecordFrom(meta);
    const base = {
      domain: dom.name,
      state: st.state,
      image: rec?.imageName,
      revision: rec?.imageRevision,
      postLoadRan: !!rec?.postLoadAt,
      reachable: st.state === 'running' && !!rec?.postLoadAt,
    };
    if (!rec)
      return {
        status: 'RELOAD',
        ...base,
        reason: 'the domain has no load record (not loaded by v2v-load)',
      };
    if (rec.imageName !== res.image.name || rec.imageRevision !== res.image.revision) {
      return {
        status: 'RELOAD',
        ...base,
        reason: `loaded with ${rec.imageName} revision ${rec.imageRevision}, not ${res.image.name} revision ${res.image.revision}`,
      };
    }
    if (st.state !== 'running')
      return { status: 'RELOAD', ...base, reason: `the domain is ${st.state}` };
    if (!rec.postLoadAt) return { status: 'POST_LOAD', ...base, reason: 'post_load has not run' };
    return { status: 'READY', ...base, reason: 'loaded with the image, running, post_load ran' };
  }

  /** VCL's power_status: 'on', 'off' or 'suspended' ('off' when there is no domain). */
  async powerStatus(res: Reservation): Promise<PowerStatus> {
    const dom = await this.activeDomain(res);
    if (!dom) return 'off';
    return POWER_OF_STATE[(await dom.getState()).state];
  }

  private async requireDomain(res: Reservation): Promise<Domain> {
    const dom = await this.activeDomain(res);
    if (!dom) {
      throw new ProvisioningError(
        `computer ${res.computer.shortName} has no domain on ${this.conn.virsh.where}`,
        {
          hint: 'load it first',
        },
      );
    }
    return dom;
  }

  /** VCL's power_on: started, resumed or woken; true when it runs (or already ran). */
  async powerOn(res: Reservation): Promise<boolean> {
    const dom = await this.requireDomain(res);
    const st = (await dom.getState()).state;
    if (st === 'paused') await dom.resume();
    else if (st === 'pmsuspended') {
      await this.conn.virsh.run(
        ['dompmwakeup', '--domain', dom.uuid],
        `wake up domain ${dom.name}`,
      );
    } else if (!isActiveState(st) || st === 'crashed') {
      if (st === 'crashed') await dom.destroy().catch(() => {});
      await dom.start();
    }
    return true;
  }

  /** VCL's power_off: the plug pulled (destroy); true when it is off (or already was). */
  async powerOff(res: Reservation): Promise<boolean> {
    const dom = await this.activeDomain(res);
    if (!dom) return true;
    if (isActiveState((await dom.getState()).state)) {
      await dom.destroy().catch((e: unknown) => {
        if (!isOperationInvalid(e)) throw e;
      });
    }
    return true;
  }

  /** VCL's power_reset: off, then on. */
  async powerReset(res: Reservation): Promise<boolean> {
    await this.requireDomain(res);
    await this.powerOff(res);
    return this.powerOn(res);
  }

  /** VCL's post_maintenance_action: the computer's domains and files go. */
  async postMaintenanceAction(res: Reservation): Promise<{ deleted: string[] }> {
    const deleted = await this.deleteExistingDomains(res);
    for (const f of await this.node.list(res.vmhost.vmPath).catch(() => [])) {
      if (f.type === 'file' && isComputerDomain(f.name, res.computer.shortName)) {
        await this.node.remove(path.posix.join(res.vmhost.vmPath, f.name));
      }
    }
    return { deleted };
  }

  // ---------------------------------------------------------------- snapshots

  /** VCL's get_snapshot_info: name → {creation_time, state, ...}. */
  async getSnapshotInfo(res: Reservation): Promise<Record<string, SnapshotInfo>> {
    const dom = await this.requireDomain(res);
    const out: Record<string, SnapshotInfo> = {};
    for (const s of await dom.snapshots.list()) out[s.name] = s;
    return out;
  }

  /** VCL's create_snapshot (`args.snapshotName`, default `vcl-<time>`; `args.description`). */
  async createSnapshot(res: Reservation): Promise<SnapshotInfo> {
    const dom = await this.requireDomain(res);
    const name = res.args.snapshotName ?? `vcl-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    return dom.snapshots.create(name, { description: res.args.description ?? 'VCL snapshot' });
  }

  /** VCL's delete_snapshot (`args.snapshotName`). */
  async deleteSnapshot(res: Reservation): Promise<boolean> {
    const dom = await this.requireDomain(res);
    const name = res.args.snapshotName;
    if (!name) throw new ProvisioningError('delete_snapshot: give args.snapshotName');
    await dom.snapshots.delete(name);
    return true;
  }

  // ---------------------------------------------------------------- images

  private imageArg(res: Reservation): string {
    return res.args.imageName ?? res.image.name;
  }

  /**
   * The image's disks where VCL looks for it (the datastore first, then the repository): the
   * first disk by its name, then `<image>-disk2`, `<image>-disk3`, … beside it (a master of
   * several disks, as capture writes it), up to the first number missing.
   */
  private async imageDisks(
    image: string,
    locate: () => Promise<ImageFiles | undefined>,
  ): Promise<ImageFiles[]> {
    const first = await locate();
    if (!first) return [];
    const dir = path.posix.dirname(first.entry.path);
    const disks = [first];
    for (let n = 1; ; n++) {
      const next = await findImageIn(this.node, dir, diskFileName(image, n), first.where);
      if (!next) return disks;
      disks.push(next);
    }
  }

  private locateImage(res: Reservation, image: string): Promise<ImageFiles[]> {
    return this.imageDisks(image, () =>
      doesImageExist(this.node, {
        datastore: res.vmhost.datastorePath,
        repository: res.vmhost.repositoryPath ?? undefined,
        image,
      }),
    );
  }

  /**
   * VCL's does_image_exist: the image's files (datastore first, then repository), or none;
   * every file of every disk, and how many disks.
   */
  async doesImageExist(
    res: Reservation,
  ): Promise<{ exists: boolean; where: string | undefined; disks: number; files: string[] }> {
    const disks = await this.locateImage(res, this.imageArg(res));
    return {
      exists: disks.length > 0,
      where: disks[0]?.where,
      disks: disks.length,
      files: disks.flatMap((d) => d.files),
    };
  }

  /**
   * VCL's get_image_size_bytes (and get_image_size in MiB): the bytes allocated, summed over
   * every disk of the image (and each disk's extents and backing chain); `virtualBytes` is the
   * sum of the disks' virtual sizes.
   */
  async getImageSize(res: Reservation): Promise<{
    bytes: number;
    mib: number;
    virtualBytes: number;
    disks: number;
    where: string;
  }> {
    const image = this.imageArg(res);
    const disks = await this.locateImage(res, image);
    const first = disks[0];
    if (!first) {
      throw new ProvisioningError(
        `image ${image} is neither in ${res.vmhost.datastorePath} nor in the repository`,
        {
          hint: 'check args.imageName / image.name',
        },
      );
    }
    let bytes = 0;
    let virtualBytes = 0;
    for (const d of disks) {
      const size = await imageSize(this.qemu.allowing(path.posix.dirname(d.entry.path)), d.entry);
      bytes += size.bytes;
      virtualBytes += size.virtualBytes;
    }
    return {
      bytes,
      mib: Math.ceil(bytes / (1024 * 1024)),
      virtualBytes,
      disks: disks.length,
      where: first.where,
    };
  }

  /** VCL's find_repository_image_file_paths: every file of every disk of the image there. */
  async findRepositoryImageFilePaths(res: Reservation): Promise<string[]> {
    const repo = res.vmhost.repositoryPath;
    if (!repo) return [];
    const image = this.imageArg(res);
    const disks = await this.imageDisks(image, () => findInRepository(this.node, repo, image));
    return disks.flatMap((d) => d.files);
  }

  /** VCL's get_image_repository_search_paths. */
  getImageRepositorySearchPaths(res: Reservation): string[] {
    return repositorySearchPaths(res, this.imageArg(res));
  }

  // ---------------------------------------------------------------- capture

  /**
   * VCL's capture: the computer's domain is shut down (gracefully, destroyed after
   * `args.shutdownTimeoutSeconds`, default 300), the COW chain of each of its disks flattened
   * into the new master's disks, `<datastore>/<image.name>.qcow2` and, for each disk after the
   * first, `<datastore>/<image.name>-disk<n>.qcow2` (each checked, then renamed in, never over
   * a file), its domain XML kept beside them (a load recreates every disk from it), and all
   * of it copied to the repository's directory of the image (`args.compat`). A Windows image
   * also gets a conversion record: it ran on KVM, a later fetch does not convert it again.
   */
  async capture(res: Reservation): Promise<CaptureResult> {
    const image = res.image.name;
    const dom = await this.requireDomain(res);
    const desc0 = await dom.getDescription({ inactive: true });
    const sources = desc0.disks.filter((d) => d.device === 'disk' && d.source);
    if (!sources.length) throw new ProvisioningError(`capture: domain ${dom.name} has no disk`);
    const masters = sources.map((_, n) => masterImageFilePath(res, image, n));
    for (const m of masters) {
      if (await this.node.stat(m)) {
        throw new ProvisioningError(`capture: the master ${m} exists already; not overwritten`, {
          hint: 'capture into a new image name (a new revision)',
        });
      }
    }
    const repo = res.vmhost.repositoryPath;
    const repoDir = repo ? path.posix.join(repo, image) : undefined;
    const repoDisks = repoDir
      ? masters.map((m) => path.posix.join(repoDir, path.posix.basename(m)))
      : [];
    for (const r of repoDisks) {
      if (await this.node.stat(r)) {
        throw new ProvisioningError(
          `capture: ${r} exists already in the repository; not overwritten`,
        );
      }
    }
    const shutdown = await this.shutDown(dom, (res.args.shutdownTimeoutSeconds ?? 300) * 1000);
    const desc = await dom.getDescription({ inactive: true });
    const disks = desc.disks.filter((d) => d.device === 'disk' && d.source);
    if (disks.length !== masters.length) {
      throw new ProvisioningError(
        `capture: domain ${dom.name} changed its disks during the shutdown (${masters.length}, now ${disks.length})`,
      );
    }
    const q = this.qemu.allowing(res.vmhost.datastorePath, res.vmhost.vmPath);
    const undo = new CleanupStack(this.log);
    const onInterrupt = this.cleanup.defer(`roll back the capture of ${image}`, () => undo.run());
    try {
      // every disk flattened and checked under a temporary name, then all renamed in
      const tmps: string[] = [];
      for (const [n, disk] of disks.entries()) {
        const tmp = path.posix.join(
          res.vmhost.datastorePath,
          `.${path.posix.basename(masters[n] as string, '.qcow2')}.capture-${randomUUID().slice(0, 8)}.qcow2`,
        );
        undo.defer(`remove ${tmp}`, () => this.node.remove(tmp));
        await q.convert(
          { path: disk.source as string, format: disk.format === 'raw' ? 'raw' : 'qcow2' },
          { path: tmp, format: 'qcow2' },
        );
        const check = await q.check({ path: tmp, format: 'qcow2' });
        if (!check.ok)
          throw new StorageError(
            tmp,
            `the flattened image fails qemu-img check (${check.corruptions} corruptions)`,
          );
        tmps.push(tmp);
      }
      // the first disk (the master's name) last: a load never sees a part of the image
      for (let n = masters.length - 1; n >= 0; n--) {
        const m = masters[n] as string;
        await this.node.rename(tmps[n] as string, m, { noReplace: true });
        undo.defer(`remove ${m}`, () => this.node.remove(m));
      }
      const xmlText = await dom.getXml({ inactive: true });
      const xml = masterXmlFilePath(res, image);
      await this.node.writeFileAtomic(xml, xmlText);
      undo.defer(`remove ${xml}`, () => this.node.remove(xml));
      const record: ConversionRecord | undefined =
        res.image.osType === 'windows'
          ? { image, how: 'captured', at: new Date().toISOString(), capturedFrom: dom.name }
          : undefined;
      if (record) {
        const f = conversionRecordFilePath(res, image);
        undo.defer(`remove ${f}`, () => this.node.remove(f));
        await writeConversionRecord(this.node, f, record);
      }
      let repository: CaptureResult['repository'];
      if (repoDir) {
        await this.node.mkdir(repoDir, { recursive: true, mode: 0o755 });
        for (let n = masters.length - 1; n >= 0; n--) {
          const target = repoDisks[n] as string;
          const rtmp = path.posix.join(
            repoDir,
            `.${path.posix.basename(target, '.qcow2')}.tmp-${randomUUID().slice(0, 8)}.qcow2`,
          );
          undo.defer(`remove ${rtmp}`, () => this.node.remove(rtmp));
          await q.convert(
            { path: masters[n] as string, format: 'qcow2' },
            { path: rtmp, format: 'qcow2' },
            {
              ...(res.args.compat ? { options: { compat: res.args.compat } } : {}),
            },
          );
          await this.node.rename(rtmp, target, { noReplace: true });
          undo.defer(`remove ${target}`, () => this.node.remove(target));
        }
        const repoXml = path.posix.join(repoDir, `${image}.xml`);
        await this.node.writeFileAtomic(repoXml, xmlText);
        if (record) {
          await writeConversionRecord(this.node, conversionRecordIn(repoDir, image), record);
        }
        repository = { image: repoDisks[0] as string, disks: repoDisks, xml: repoXml };
      }
      onInterrupt.dismiss();
      let bytes = 0;
      for (const m of masters) bytes += (await this.node.stat(m))?.size ?? 0;
      return {
        image,
        domain: dom.name,
        master: masters[0] as string,
        masters,
        xml,
        repository,
        bytes,
        shutdown,
      };
    } catch (e) {
      onInterrupt.dismiss();
      await undo.run();
      throw e;
    }
  }

  /** Graceful shutdown, then destroy after `timeoutMs`. */
  private async shutDown(dom: Domain, timeoutMs: number): Promise<CaptureResult['shutdown']> {
    if (!isActiveState((await dom.getState()).state)) return 'was-off';
    await dom.shutdown().catch((e: unknown) => {
      if (!isOperationInvalid(e)) throw e;
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!isActiveState((await dom.getState()).state)) return 'graceful';
      await sleep(1000);
    }
    this.log.warn(`${dom.name} did not shut down within ${timeoutMs / 1000} s: destroying it`);
    await dom.destroy().catch((e: unknown) => {
      if (!isOperationInvalid(e)) throw e;
    });
    return 'destroyed';
  }

  // ---------------------------------------------------------------- names and paths

  /** libvirt.pm's naming helpers, all at once. */
  names(res: Reservation): Record<string, string> {
    return {
      domainName: domainName(res),
      domainFileBaseName: domainFileBaseName(res),
      domainXmlDirectoryPath: domainXmlDirectoryPath(),
      domainXmlFilePath: domainXmlFilePath(res),
      masterImageDirectoryPath: masterImageDirectoryPath(res),
      masterImageFilePath: masterImageFilePath(res),
      copyOnWriteFilePath: copyOnWriteFilePath(res),
      newImageName: newImageName(res),
    };
  }
}
