/**
 * The conversion, stage by stage, top to bottom (the v2v design's run):
 *
 *   read metadata → check every option and output → storage prepare → open the guest (one
 *   appliance) and inspect it → choose the modules → (install the prerequisites, e.g. a kernel
 *   given with --with, and inspect the guest's software again) → plan (HVSource unconfigures,
 *   HVTarget configures through the GuestOS) → apply the plan → close the guest → storage
 *   finish → write the domain XML → (verify the boot) → report.
 *
 * `--dry-run` stops after the plan: nothing is written anywhere (the source opens read-only).
 * Every resource is registered with the run's cleanup stack where it is made, so a failure or
 * an interruption at any stage leaves nothing behind and never touches the source.
 */

import * as path from 'node:path';
import { inject, injectAll, injectable } from 'tsyringe';
import { TOKENS } from '../di/tokens.js';
import { UsageError } from '../errors.js';
import { Guest } from '../guestfs/guest.js';
import { GuestfsSession } from '../guestfs/session.js';
import { buildTargetDomainXml, type DomainDefinitionV2v } from '../hvtarget/domain.js';
import { kvmWorks } from '../hvtarget/kvm-probe.js';
import type { Logger } from '../log/logger.js';
import type { ReaderKind, SourceGuest, SourceHypervisor } from '../metadata/model.js';
import type { MetadataReader, ReaderOptions } from '../metadata/reader.js';
import { guessKind, readerFor } from '../metadata/registry.js';
import type { Node } from '../node/node.js';
import { scratchName, scratchParents, sweepDeadScratch } from '../node/scratch.js';
import { tempSibling } from '../node/temp-name.js';
import { DEFAULT_LIBVIRT_URI, Virsh } from '../provisioning/libvirt/virsh.js';
import type { CleanupHandle, CleanupStack } from '../run/cleanup.js';
import type { ImageRef } from '../storage/image-format.js';
import type { ProgressEvent, QemuImg } from '../storage/qemu-img.js';
import {
  archivedImage,
  type ConvertStorage,
  prepareDisk,
  sourceImage,
  type WorkDisk,
} from './disks.js';
import { ConversionError } from './errors.js';
import type { InitramfsMode } from './initramfs.js';
import { type GuestInspection, inspectGuest, reinspectSoftware } from './inspection.js';
import type {
  ConversionContext,
  GuestOs,
  HvSource,
  HvTarget,
  InterfaceIdentity,
} from './modules.js';
import { type ApplyEvent, applyPlan, describeAction, Plan, type PlannedAction } from './plan.js';
import { isTempSiblingOf, RunRecord, type RunRecordData } from './run-record.js';
import { type NetworkMapping, type TargetDisk, targetLayout } from './target.js';
import { type BootVerdict, verifyBoot } from './verify-boot.js';

export const STAGES = [
  'read-metadata',
  'check',
  'storage-prepare',
  'open-guest',
  'inspect',
  'prerequisites',
  'plan',
  'apply',
  'close-guest',
  'storage-finish',
  'write-metadata',
  'verify-boot',
] as const;
export type Stage = (typeof STAGES)[number];

/** What `v2v-load convert` asks for. */
export interface ConvertRequest {
  source: string[];
  /** `-i`; guessed from the source when absent. */
  input?: ReaderKind | undefined;
  readerOptions?: ReaderOptions | undefined;
  /**
   * The hypervisor the guest was made for when its metadata does not say (a bare disk: the
   * provisioner's Windows masters and VMware disks without a .vmx); never overrides a reader.
   */
  sourceHypervisor?: SourceHypervisor | undefined;
  /** `-o DIR`: where the disks and the XML go. */
  outputDir: string;
  /** Output name (default: the source guest's name). */
  name?: string | undefined;
  storage: ConvertStorage;
  snapshotDir?: string | undefined;
  outputFormat: 'qcow2' | 'raw';
  virtio: boolean;
  /** auto: kvm when the appliance ran with KVM on the node, qemu when only TCG works. */
  domainType: 'auto' | 'kvm' | 'qemu';
  /** How the libguestfs appliance runs (default auto: KVM, else TCG). */
  accel?: 'auto' | 'kvm' | 'tcg' | undefined;
  networks: NetworkMapping[];
  withFiles: Record<string, string>;
  /** `--virtio-win DIR_OR_ISO` (Windows guests). */
  virtioWin?: string | undefined;
  /** `--remove-vmware-tools-firstboot` (Windows guests). */
  removeVmwareToolsFirstboot?: boolean | undefined;
  /** `--initramfs`: extend the guest's initramfs (default) or rebuild it with its own tool. */
  initramfs?: InitramfsMode | undefined;
  dryRun: boolean;
  verifyBoot: boolean;
  /** How long verify-boot waits for the guest's userspace (default 300 s). */
  verifyTimeoutMs?: number | undefined;
  /** libvirt URI verify-boot runs the throwaway domain on. */
  connect?: string | undefined;
  /** Appliance vCPUs (default 1). */
  applianceSmp?: number | undefined;
}

export type ConvertEvent =
  | { type: 'stage'; stage: Stage; state: 'start' | 'end'; ms?: number }
  | { type: 'progress'; disk: string; percent: number }
  | { type: 'action'; action: string; ms: number }
  | { type: 'warning'; message: string };

export interface ConvertResult {
  name: string;
  dryRun: boolean;
  source: { kind: ReaderKind; path: string; hypervisor: string };
  guest: {
    distro: string;
    version: string;
    productName: string;
    kernels: string[];
    initramfsTool: string;
    bootloader: string;
  };
  modules: { hvsource: string | undefined; guestos: string; hvtarget: string };
  /** Each planned change, as text (with diffs for files). */
  plan: string[];
  planActions: PlannedAction[];
  warnings: string[];
  /** Facts for the report (e.g. which VMware services were found and changed). */
  notes?: string[] | undefined;
  interfaces: InterfaceIdentity[];
  disks: { path: string; format: string; dev: string }[];
  /** The domain XML path (undefined for a dry run). */
  xmlPath: string | undefined;
  xml: string;
  /** Milliseconds per stage. */
  stages: Partial<Record<Stage, number>>;
  verify?: BootVerdict | undefined;
}

@injectable()
export class Converter {
  constructor(
    @inject(TOKENS.Node) private readonly node: Node,
    @inject(TOKENS.QemuImg) private readonly qemu: QemuImg,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Cleanup) private readonly cleanup: CleanupStack,
    @inject(TOKENS.AbortSignal) private readonly signal: AbortSignal,
    @injectAll(TOKENS.MetadataReader) private readonly readers: MetadataReader[],
    @injectAll(TOKENS.HvSource) private readonly hvsources: HvSource[],
    @injectAll(TOKENS.GuestOs) private readonly guestoses: GuestOs[],
    @inject(TOKENS.HvTarget) private readonly hvtarget: HvTarget,
  ) {}

  /** Checks the request's own values, before anything is read or any node is reached. */
  static checkRequest(req: ConvertRequest): void {
    if (!path.isAbsolute(req.outputDir)) {
      throw new UsageError(`-o ${req.outputDir}: the output directory must be an absolute path`);
    }
    if (req.snapshotDir !== undefined && !path.isAbsolute(req.snapshotDir)) {
      throw new UsageError(`--snapshot-dir ${req.snapshotDir}: must be an absolute path`);
    }
    if (req.storage === 'snapshot' && req.outputFormat !== 'qcow2') {
      throw new UsageError(
        `--storage snapshot keeps the overlay over the source as the output: --output-format must be qcow2, not ${req.outputFormat}`,
      );
    }
    if (req.snapshotDir !== undefined && req.storage !== 'copy') {
      throw new UsageError(
        `--snapshot-dir applies to --storage copy, not to --storage ${req.storage}`,
      );
    }
    if (req.virtioWin !== undefined && !path.isAbsolute(req.virtioWin)) {
      throw new UsageError(`--virtio-win ${req.virtioWin}: the path must be absolute`);
    }
    for (const [k, v] of Object.entries(req.withFiles)) {
      if (!path.isAbsolute(v)) throw new UsageError(`--with ${k}=${v}: the path must be absolute`);
    }
    if (req.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(req.name)) {
      throw new UsageError(
        `--name ${JSON.stringify(req.name)}: use letters, digits, '.', '_', '+' and '-' (at most 64)`,
      );
    }
  }

  async convert(
    req: ConvertRequest,
    onEvent: (e: ConvertEvent) => void = () => {},
  ): Promise<ConvertResult> {
    const stages: Partial<Record<Stage, number>> = {};
    const stage = async <T>(s: Stage, fn: () => Promise<T>): Promise<T> => {
      onEvent({ type: 'stage', stage: s, state: 'start' });
      const t0 = performance.now();
      const r = await fn();
      stages[s] = Math.round(performance.now() - t0);
      onEvent({ type: 'stage', stage: s, state: 'end', ms: stages[s] });
      return r;
    };
    Converter.checkRequest(req);

    // Read metadata.
    const kind = req.input ?? guessKind(req.source);
    const reader = readerFor(kind, this.readers);
    const readerOptions = req.readerOptions ?? {};
    reader.check(req.source, readerOptions);
    // What runs killed outright left in scratch folders goes first (never in a dry run, which
    // writes nothing).
    if (!req.dryRun) {
      await sweepDeadScratch(this.node, {
        parents: scratchParents(readerOptions.tmpDir),
        log: this.log,
      });
    }
    const read = await stage('read-metadata', () => this.readSource(reader, req, readerOptions));
    const source: SourceGuest =
      req.sourceHypervisor && read.hypervisor === 'unknown'
        ? { ...read, hypervisor: req.sourceHypervisor }
        : read;

    // Check every option and output before anything is written.
    const layout = await stage('check', async () => {
      const layout = targetLayout(source, {
        outputDir: req.outputDir,
        outputFormat: req.outputFormat,
        virtio: req.virtio,
        networks: req.networks,
        name: req.name,
      });
      if (!layout.disks.length) {
        throw new ConversionError(`${source.origin.source}: the guest has no disks`);
      }
      for (const [k, v] of Object.entries(req.withFiles)) {
        const st = await this.node.stat(v);
        if (!st || st.type === 'directory') {
          throw new UsageError(`--with ${k}=${v}: no such file on ${this.node.name}`);
        }
      }
      if (req.virtioWin !== undefined && !(await this.node.stat(req.virtioWin))) {
        throw new UsageError(
          `--virtio-win ${req.virtioWin}: no such directory or ISO file on ${this.node.name}`,
        );
      }
      return layout;
    });
    const xmlPath = path.join(req.outputDir, `${layout.name}.xml`);
    const outputPaths = req.storage === 'in-place' ? [] : layout.disks.map((d) => d.output);
    let record: RunRecord | undefined;
    if (!req.dryRun) {
      record = await RunRecord.acquire(
        this.node,
        req.outputDir,
        layout.name,
        {
          outputs: [...outputPaths, xmlPath],
          tempDirs: [...new Set([req.outputDir, req.snapshotDir ?? req.outputDir])],
        },
        this.log,
        (stale) => this.cleanStale(stale),
      );
      const r = record;
      this.cleanup.defer(`release the run record ${r.path}`, () => r.release());
    }
    await this.checkOutputs(req, outputPaths, layout.name);
    if (!req.dryRun && req.storage === 'copy') await this.checkSpace(layout.disks, req.outputDir);

    // Storage prepare.
    const work: WorkDisk[] = req.dryRun
      ? []
      : await stage('storage-prepare', async () => {
          const out: WorkDisk[] = [];
          for (const t of layout.disks) {
            out.push(
              await prepareDisk(this.qemu, t, {
                storage: req.storage,
                snapshotDir: req.snapshotDir,
                cleanup: this.cleanup,
              }),
            );
          }
          return out;
        });

    // One appliance for the whole conversion.
    const drives = req.dryRun
      ? await this.dryRunDrives(layout.disks)
      : work.map((w) => ({ path: w.work.path, format: w.work.format }));
    const session = await stage('open-guest', () =>
      GuestfsSession.open(this.node, drives, {
        signal: this.signal,
        log: this.log,
        smp: req.applianceSmp,
        accel: req.accel,
      }),
    );
    const closeHandle = this.cleanup.defer('shut the appliance down', () => session.close());
    const guest = new Guest(session);
    const inspection = await stage('inspect', () => inspectGuest(guest, req.dryRun));
    if (inspection.type === 'linux' && !inspection.packages.length) {
      throw new ConversionError(
        `${source.origin.source}: the guest's package database is missing or empty (${inspection.packageFormat} / ${inspection.packageManager}): its packages cannot be removed or checked`,
        {
          hint: 'check the guest: /var/lib/dpkg/status (Debian) or /var/lib/rpm (RHEL) must be there',
        },
      );
    }

    // auto: kvm when KVM really runs a guest on this node (the boot probe, cached), else qemu.
    // Not the appliance's acceleration: without /dev/kvm libguestfs falls back to TCG by itself.
    const domainType =
      req.domainType !== 'auto'
        ? req.domainType
        : (await kvmWorks(this.node)).works
          ? 'kvm'
          : 'qemu';
    const ctx: ConversionContext = {
      source,
      inspection,
      target: layout,
      options: {
        virtio: req.virtio,
        domainType,
        withFiles: req.withFiles,
        virtioWin: req.virtioWin,
        removeVmwareToolsFirstboot: req.removeVmwareToolsFirstboot,
        initramfs: req.initramfs,
      },
      log: this.log,
      now: new Date(),
      io: { node: this.node, cleanup: this.cleanup },
    };
    const hvsource = this.hvsources.find((m) => m.applies(source, inspection));
    const guestos = this.guestoses.find((m) => m.applies(inspection));
    if (!guestos) {
      throw new ConversionError(
        `${source.origin.source}: no conversion module for ${describeOs(inspection)}`,
        { hint: `modules: ${this.guestoses.map((m) => m.name).join(', ')}` },
      );
    }
    this.hvtarget.canConfigure(ctx);
    if (!hvsource && source.hypervisor !== 'kvm') {
      onEvent({
        type: 'warning',
        message: `no module undoes ${source.hypervisor} in a ${describeOs(inspection)} guest: its tools stay`,
      });
    }
    const onAction = (e: ApplyEvent) =>
      onEvent({ type: 'action', action: describeAction(e.action, false), ms: Math.round(e.ms) });

    // Prerequisites (a kernel package given with --with): installed first, so the plan sees the
    // kernels, initramfs images and boot entries they brought. A dry run installs nothing.
    const pre = new Plan(guest);
    await this.hvtarget.planPrerequisites(pre, guestos, ctx);
    if (pre.actions.length && req.dryRun) {
      pre.note(
        'a dry run installs nothing: the plan after the install is made on the guest as it is now',
      );
    } else if (pre.actions.length) {
      await stage('prerequisites', async () => {
        await applyPlan(pre, guest, onAction);
        ctx.inspection = await reinspectSoftware(guest, ctx.inspection);
      });
      this.hvtarget.canConfigure(ctx, true);
    }

    // Plan.
    const { plan, interfaces } = await stage('plan', async () => {
      const plan = new Plan(guest);
      if (hvsource) await hvsource.unconfigureGuest(plan, guestos, ctx);
      const interfaces = await guestos.keepNetworkIdentity(plan, ctx);
      await this.hvtarget.configureGuest(plan, guestos, ctx);
      return { plan, interfaces };
    });
    const warnings = [...pre.warnings, ...plan.warnings];
    for (const w of warnings) onEvent({ type: 'warning', message: w });
    const domain: DomainDefinitionV2v = this.hvtarget.configureMetadata(ctx);
    if (req.storage === 'in-place') {
      domain.disks = domain.disks.map((d, i) => ({
        ...d,
        path: work[i]?.source.path ?? d.path,
        format: (work[i]?.source.format ?? d.format) as 'qcow2' | 'raw',
      }));
    }
    const xml = buildTargetDomainXml(domain);
    const actions = [...pre.actions, ...plan.actions];
    const notes = [...pre.notes, ...plan.notes];
    const result = (xmlOut: string | undefined, disks: ImageRef[]): ConvertResult => ({
      name: layout.name,
      dryRun: req.dryRun,
      source: { kind, path: source.origin.source, hypervisor: source.hypervisor },
      guest: {
        distro: ctx.inspection.distro,
        version: `${ctx.inspection.majorVersion}.${ctx.inspection.minorVersion}`,
        productName: ctx.inspection.productName,
        kernels: ctx.inspection.kernels.map((k) => k.version),
        initramfsTool: ctx.inspection.initramfsTool,
        bootloader: ctx.inspection.bootloader.kind,
      },
      modules: { hvsource: hvsource?.name, guestos: guestos.name, hvtarget: this.hvtarget.name },
      plan: actions.map((a) => describeAction(a)),
      planActions: actions,
      warnings,
      notes,
      interfaces,
      disks: disks.map((d, i) => ({
        path: d.path,
        format: d.format,
        dev: domain.disks[i]?.dev ?? layout.disks[i]?.xmlDev ?? '',
      })),
      xmlPath: xmlOut,
      xml,
      stages,
    });

    if (req.dryRun) {
      await closeHandle.runNow();
      return result(undefined, []);
    }

    // Apply, then close the guest (unmount, sync, shut the appliance down).
    await stage('apply', () => applyPlan(plan, guest, onAction));
    await stage('close-guest', async () => {
      await session.call('umount_all');
      await session.call('sync');
      await closeHandle.runNow();
    });

    // Storage finish: outputs moved into place, removed again if a later stage fails.
    const handedOver: CleanupHandle[] = [];
    const outputs = await stage('storage-finish', async () => {
      const outs: ImageRef[] = [];
      for (const w of work) {
        const out = await w.finish((p: ProgressEvent) =>
          onEvent({ type: 'progress', disk: w.target.output, percent: p.percent }),
        );
        outs.push(out);
        if (req.storage !== 'in-place') {
          handedOver.push(
            this.cleanup.defer(`remove output ${out.path} of a failed conversion`, () =>
              this.node.remove(out.path),
            ),
          );
        }
      }
      return outs;
    });

    await stage('write-metadata', async () => {
      const tmp = tempSibling(xmlPath);
      const h = this.cleanup.defer(`remove ${tmp}`, () => this.node.remove(tmp));
      await this.node.writeFileAtomic(tmp, xml, { mode: 0o644 });
      await this.node.rename(tmp, xmlPath, { noReplace: true });
      h.dismiss();
      handedOver.push(
        this.cleanup.defer(`remove ${xmlPath} of a failed conversion`, () =>
          this.node.remove(xmlPath),
        ),
      );
    });

    let verify: BootVerdict | undefined;
    if (req.verifyBoot) {
      // A snapshot output is an overlay over the source: its chain reaches the sources' folders
      // (which the conversion read already), so the throwaway overlays over it may too.
      const chainDirs = source.disks.map((d) => path.dirname(d.path));
      verify = await stage('verify-boot', () =>
        verifyBoot(this.qemu.allowing(...chainDirs), domain, {
          uri: req.connect,
          timeoutMs: req.verifyTimeoutMs,
          signal: this.signal,
          log: this.log,
          cleanup: this.cleanup,
          record: (r) =>
            record?.update({
              libvirt: { uri: req.connect ?? DEFAULT_LIBVIRT_URI, ...r.libvirt },
              scratch: r.scratch,
            }) ?? Promise.resolve(),
        }),
      );
    }
    // Success: the outputs are the user's now.
    for (const h of handedOver) h.dismiss();
    return { ...result(xmlPath, outputs), verify };
  }

  /** Removes what a dead run of the same conversion left (its run record lists it). */
  private async cleanStale(stale: RunRecordData): Promise<void> {
    const quietly = (p: Promise<unknown>) =>
      p.then(
        () => {},
        () => {},
      );
    for (const dir of stale.tempDirs) {
      const entries = await this.node.list(dir).catch(() => []);
      for (const e of entries) {
        if (stale.outputs.some((o) => isTempSiblingOf(e.name, o))) {
          await quietly(this.node.remove(path.posix.join(dir, e.name)));
        }
      }
    }
    for (const o of stale.outputs) await quietly(this.node.remove(o));
    if (stale.libvirt) {
      const virsh = new Virsh(this.node, stale.libvirt.uri);
      if (stale.libvirt.domain)
        await quietly(virsh.run(['destroy', stale.libvirt.domain], 'destroy'));
      if (stale.libvirt.network)
        await quietly(virsh.run(['net-destroy', stale.libvirt.network], 'net-destroy'));
    }
    if (stale.scratch) await quietly(this.node.remove(stale.scratch, { recursive: true }));
  }

  private async readSource(
    reader: MetadataReader,
    req: ConvertRequest,
    options: ReaderOptions,
  ): Promise<SourceGuest> {
    const tmpDir = await this.makeTmpDir();
    try {
      return await reader.read(req.source, options, {
        node: this.node,
        log: this.log,
        tmpDir,
        signal: this.signal,
        // A compressed OVA's extracted disks live until the run ends.
        cleanup: this.cleanup,
      });
    } finally {
      await this.node.remove(tmpDir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * The drives a dry run opens read-only: the sources, and for a disk inside an archive a
   * throwaway qcow2 overlay in a temporary directory over the member's byte range.
   */
  private async dryRunDrives(
    disks: readonly TargetDisk[],
  ): Promise<{ path: string; format: string; readonly: boolean }[]> {
    const out: { path: string; format: string; readonly: boolean }[] = [];
    let tmp: string | undefined;
    for (const [i, t] of disks.entries()) {
      const member = archivedImage(t);
      if (!member) {
        out.push({ path: t.source.path, format: t.source.format, readonly: true });
        continue;
      }
      tmp ??= await this.makeTmpDir();
      const overlay = path.posix.join(tmp, `disk${i}.qcow2`);
      await this.qemu.overlayOnMember(member, overlay);
      out.push({ path: overlay, format: 'qcow2', readonly: true });
    }
    return out;
  }

  private async makeTmpDir(): Promise<string> {
    const dir = scratchName('/var/tmp/v2v-load-convert-');
    await this.node.mkdir(dir, { mode: 0o700 });
    this.cleanup.defer(`remove ${dir}`, () => this.node.remove(dir, { recursive: true }));
    return dir;
  }

  /**
   * Copy mode: the outputs will need about what `qemu-img measure` says of the sources (the
   * conversion changes little): checked before the appliance starts, so a full disk fails in
   * seconds, not after the conversion. storage-finish checks again with the real overlay.
   */
  private async checkSpace(disks: readonly TargetDisk[], dir: string): Promise<void> {
    let need = 0;
    for (const d of disks) {
      const member = archivedImage(d);
      const src = sourceImage(d);
      need += (
        member
          ? await this.qemu.measureMember(member, d.outputFormat)
          : await this.qemu.allowing(path.dirname(src.path)).measure(src, d.outputFormat)
      ).requiredBytes;
    }
    const free = await this.qemu.freeBytes(dir);
    if (need > free) {
      throw new ConversionError(
        `${dir}: not enough free space for the converted disks: ${need} bytes required (qemu-img measure of the sources), ${free} bytes available`,
        { hint: 'free space in the output directory or choose another one (-o)' },
      );
    }
  }

  private async checkOutputs(req: ConvertRequest, outputs: string[], name: string): Promise<void> {
    const dir = await this.node.stat(req.outputDir);
    if (dir?.type !== 'directory') {
      throw new UsageError(`-o ${req.outputDir}: no such directory on ${this.node.name}`);
    }
    if (req.dryRun) return;
    const taken: string[] = [];
    for (const f of [
      ...(req.storage === 'in-place' ? [] : outputs),
      path.join(req.outputDir, `${name}.xml`),
    ]) {
      if (await this.node.stat(f)) taken.push(f);
    }
    if (taken.length) {
      throw new ConversionError(`output exists already, not overwritten: ${taken.join(', ')}`, {
        hint: 'remove it, or give another --name or -o',
      });
    }
  }
}

function describeOs(i: GuestInspection): string {
  return i.productName && i.productName !== 'unknown'
    ? `${i.productName} (${i.distro})`
    : `${i.type}/${i.distro}`;
}
