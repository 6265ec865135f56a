/**
 * `v2v-load import`: a VMware (or Xen) export in, a running KVM guest on a node out. The stages,
 * top to bottom:
 *
 *   prepare (read the source's metadata, reach the node and its libvirt, take the import record
 *   in the pool, check that the name, the files and the UUID are free) → convert (the Converter
 *   of `v2v-load convert`, here on the converting machine: into the pool itself when the node is
 *   this machine, else into a local staging directory) → place (each disk streamed once to the
 *   pool over SSH and checksummed; the domain XML written there with the pool paths and a
 *   console log) → define → start → verify-boot (the imported domain's own console shows a
 *   login prompt).
 *
 * Every thing made on the node is first written into the import record, then registered with
 * the run's cleanup stack: a failure or an interruption at any stage removes all of it (the
 * domain, the disks, the XML, temporary files) and never touches the source; after a kill -9,
 * the next import of the same name into the same pool removes what the dead one made, then
 * imports.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { inject, injectAll, injectable } from 'tsyringe';
import type { ConvertStorage } from '../convert/disks.js';
import type {
  ConvertEvent,
  Converter,
  ConvertRequest,
  ConvertResult,
} from '../convert/pipeline.js';
import { isTempSiblingOf } from '../convert/run-record.js';
import { type NetworkMapping, targetLayout } from '../convert/target.js';
import type { BootVerdict } from '../convert/verify-boot.js';
import { TOKENS } from '../di/tokens.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ReaderKind } from '../metadata/model.js';
import type { MetadataReader, ReaderOptions } from '../metadata/reader.js';
import { guessKind, readerFor } from '../metadata/registry.js';
import type { Node } from '../node/node.js';
import type { NodeFactory } from '../node/node-factory.js';
import type { NodeSpec } from '../node/node-spec.js';
import { pidAlive } from '../node/pid-alive.js';
import { scratchName, scratchParents, sweepDeadScratch } from '../node/scratch.js';
import { tempSibling } from '../node/temp-name.js';
import { DEFAULT_LIBVIRT_URI, LibvirtConnection } from '../provisioning/libvirt/connection.js';
import type { Domain } from '../provisioning/libvirt/domain.js';
import { isNotFound, isOperationInvalid } from '../provisioning/libvirt/errors.js';
import type { CleanupStack } from '../run/cleanup.js';
import { bindSignal } from '../run/signal-bound-node.js';
import { watchBoot } from './boot-watch.js';
import { placeDomainXml } from './domain-xml.js';
import { ImportError } from './errors.js';
import {
  type ConvertedRecord,
  ImportRecord,
  type ImportRecordData,
  type PlacedRecord,
} from './import-record.js';
import { withLibvirtRetry } from './libvirt-retry.js';
import { type CopyProgress, placeFile } from './place.js';

export const IMPORT_STAGES = [
  'prepare',
  'convert',
  'place',
  'define',
  'start',
  'verify-boot',
] as const;
export type ImportStage = (typeof IMPORT_STAGES)[number];

/** The pool when none is given. */
export const DEFAULT_POOL = '/var/lib/libvirt/images';
/** Where a remote import keeps the converted disks until they are placed. */
export const STAGING_ROOT = '/var/tmp/v2v-load-import';

/** The storage modes an import offers (it never converts the source in place). */
export const IMPORT_STORAGE = ['copy', 'snapshot'] as const satisfies readonly ConvertStorage[];
export type ImportStorage = (typeof IMPORT_STORAGE)[number];

/** What one import does. */
export interface ImportRequest {
  source: string[];
  input?: ReaderKind | undefined;
  readerOptions?: ReaderOptions | undefined;
  /** The node the guest goes to (default: this machine). */
  target?: NodeSpec | undefined;
  /** libvirt URI on the node (default qemu:///system). */
  connect?: string | undefined;
  /** Directory on the node for the disks, the XML and the console log (default DEFAULT_POOL). */
  pool?: string | undefined;
  name?: string | undefined;
  networks?: NetworkMapping[] | undefined;
  /** copy (default), or snapshot: a qcow2 over the source (this machine only). */
  storage?: ImportStorage | undefined;
  outputFormat?: 'qcow2' | 'raw' | undefined;
  domainType?: 'auto' | 'kvm' | 'qemu' | undefined;
  accel?: 'auto' | 'kvm' | 'tcg' | undefined;
  withFiles?: Record<string, string> | undefined;
  applianceSmp?: number | undefined;
  /** Start the domain (default true). */
  start?: boolean | undefined;
  /** Watch the started domain's console for a login prompt. */
  verifyBoot?: boolean | undefined;
  /** Default 300 s. */
  verifyTimeoutMs?: number | undefined;
  /** libvirt calls ride out a libvirtd restart for this long (default 60 s). */
  libvirtRetryMs?: number | undefined;
}

export type ImportEvent =
  | { type: 'stage'; stage: ImportStage; state: 'start' | 'end'; ms?: number }
  /** A stage event of the conversion inside the convert stage. */
  | { type: 'convert-stage'; stage: string; state: 'start' | 'end'; ms?: number }
  | { type: 'progress'; copy: 'convert' | 'place'; disk: string; percent: number }
  | { type: 'warning'; message: string };

export interface ImportedDisk {
  path: string;
  format: string;
  dev: string;
  bytes: number;
  /** sha256 of the bytes placed (remote nodes: checked on both ends). */
  sha256?: string | undefined;
}

export interface ImportResult {
  name: string;
  uuid: string;
  node: string;
  uri: string;
  pool: string;
  source: { kind: ReaderKind; path: string; hypervisor: string };
  guest: ConvertResult['guest'];
  disks: ImportedDisk[];
  xmlPath: string;
  consoleLog: string;
  /** The domain's state at the end (libvirt's words). */
  state: string;
  verify?: BootVerdict | undefined;
  warnings: string[];
  /** Milliseconds per import stage. */
  stages: Partial<Record<ImportStage, number>>;
  /** Milliseconds per stage of the conversion (inside `convert`). */
  convertStages: ConvertResult['stages'];
  /** The conversion was reused from an import that was killed after it (see ImportRecord). */
  resumed: boolean;
  /** A staged run: the last stage it ran (or found done); the import is complete when absent. */
  reached?: ImportStage | undefined;
}

/**
 * One stage run of an import whose stages run apart (a batch queue: each stage one job, maybe
 * on another worker). The import record in the pool belongs to `owner` across the runs; each run
 * takes it over, finds what the earlier runs finished (conversion, placed disks, defined and
 * started domain: recorded once done), removes what an unfinished earlier run left, runs the
 * stages up to `upTo` and returns, keeping what it made. A failed run removes only what that
 * run was making; {@link Importer.discard} removes the whole item (its last stage failed for
 * good). The record stays after the last stage too (the queue may lose a stage's result and run
 * it again: it resumes); {@link Importer.finish} removes it once the item is done.
 */
export interface StagedRun {
  /** The queue item owning the import record: `queue:BATCH/ITEM`. */
  owner: string;
  /** Run up to and including this stage (prepare always runs). */
  upTo: ImportStage;
}

/** What a staged run found finished by the earlier runs of the same item. */
interface Resume {
  converted: ConvertedRecord;
  placed?: PlacedRecord | undefined;
  defined?: boolean | undefined;
  started?: boolean | undefined;
  uuid?: string | undefined;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

@injectable()
export class Importer {
  constructor(
    @inject(TOKENS.Converter) private readonly converter: Converter,
    @inject(TOKENS.Node) private readonly local: Node,
    @inject(TOKENS.NodeFactory) private readonly nodes: NodeFactory,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Cleanup) private readonly cleanup: CleanupStack,
    @inject(TOKENS.AbortSignal) private readonly signal: AbortSignal,
    @injectAll(TOKENS.MetadataReader) private readonly readers: MetadataReader[],
  ) {}

  /** Checks the request's own values before any node is reached. */
  static checkRequest(req: ImportRequest): void {
    if (!req.source.length) throw new UsageError('give a SOURCE to import');
    const pool = req.pool ?? DEFAULT_POOL;
    if (!path.isAbsolute(pool)) {
      throw new UsageError(`--pool ${pool}: must be an absolute path on the node`);
    }
    if (req.name !== undefined && !NAME_RE.test(req.name)) {
      throw new UsageError(
        `--name ${JSON.stringify(req.name)}: use letters, digits, '.', '_', '+' and '-' (at most 64)`,
      );
    }
    if (req.storage === 'snapshot' && req.target?.ssh) {
      throw new UsageError(
        '--storage snapshot keeps the disk as an overlay over the source: it works on this machine only, not with --host',
        { hint: 'use --storage copy (the default) for another node' },
      );
    }
    if (req.storage === 'snapshot' && req.outputFormat === 'raw') {
      throw new UsageError('--storage snapshot needs --output-format qcow2');
    }
    if (req.verifyBoot && req.start === false) {
      throw new UsageError(
        '--verify-boot watches the imported domain boot: it cannot be combined with --no-start',
      );
    }
    if (req.verifyTimeoutMs !== undefined && !(req.verifyTimeoutMs > 0)) {
      throw new UsageError(`--verify-timeout: give a number of seconds > 0`);
    }
  }

  async import(
    req: ImportRequest,
    onEvent: (e: ImportEvent) => void = () => {},
    staged?: StagedRun,
  ): Promise<ImportResult> {
    Importer.checkRequest(req);
    const stages: Partial<Record<ImportStage, number>> = {};
    const stage = async <T>(s: ImportStage, fn: () => Promise<T>): Promise<T> => {
      onEvent({ type: 'stage', stage: s, state: 'start' });
      const t0 = performance.now();
      const r = await fn();
      stages[s] = Math.round(performance.now() - t0);
      onEvent({ type: 'stage', stage: s, state: 'end', ms: stages[s] });
      return r;
    };
    const warnings: string[] = [];
    const warn = (message: string) => {
      warnings.push(message);
      onEvent({ type: 'warning', message });
    };
    const pool = req.pool ?? DEFAULT_POOL;
    const uri = req.connect ?? DEFAULT_LIBVIRT_URI;
    const remote = !!req.target?.ssh;
    const retry = <T>(what: string, fn: () => Promise<T>) =>
      withLibvirtRetry(what, fn, {
        signal: this.signal,
        log: this.log,
        deadlineMs: req.libvirtRetryMs,
      });

    // Prepare: everything checked before anything is made.
    const prep = await stage('prepare', async () => {
      const kind = req.input ?? guessKind(req.source);
      const reader = readerFor(kind, this.readers);
      const readerOptions = req.readerOptions ?? {};
      reader.check(req.source, readerOptions);
      // Scratch folders of runs killed outright (this machine's; the target node's below).
      await sweepDeadScratch(this.local, {
        parents: scratchParents(readerOptions.tmpDir),
        log: this.log,
      });
      const source = await this.readSource(reader, req.source, readerOptions);
      const name = req.name ?? source.name;
      if (!NAME_RE.test(name)) {
        throw new ImportError(
          `${source.origin.source}: the guest's name ${JSON.stringify(name)} cannot name a domain and its files`,
          { hint: 'give one with --name' },
        );
      }
      const unbound = await this.nodes.get(req.target ?? {});
      const node = bindSignal(unbound, this.signal);
      const conn = new LibvirtConnection(node, uri);
      // Cleanup runs after an interruption too: its virsh commands must not be bound to it.
      const cleanupConn = new LibvirtConnection(unbound, uri);
      if (!unbound.isLocal) await sweepDeadScratch(node, { log: this.log });
      if ((await node.stat(pool))?.type !== 'directory') {
        throw new ImportError(`--pool ${pool}: no such directory on ${node.name}`, {
          hint: 'create it (QEMU must be able to read it: mode 0755 or 0711)',
        });
      }
      // The guest runs on the node: its libvirt says which domain types it offers.
      const offered = await retry('read the host capabilities', () => conn.domainTypes());
      let domainType = req.domainType ?? 'auto';
      if (domainType !== 'auto' && !offered.includes(domainType)) {
        throw new ImportError(
          `--domain-type ${domainType}: ${uri} on ${node.name} offers ${offered.join(', ') || 'no x86_64 domain type'}`,
          {
            hint: offered.includes('qemu') ? 'use --domain-type qemu (or auto)' : 'check the node',
          },
        );
      }
      // auto: qemu where the node has no KVM; kvm on a remote node that offers it; on this
      // machine the conversion's appliance finds out whether KVM really works.
      if (domainType === 'auto' && !offered.includes('kvm')) domainType = 'qemu';
      else if (domainType === 'auto' && remote) domainType = 'kvm';
      const layout = targetLayout(source, {
        outputDir: pool,
        outputFormat: req.outputFormat ?? 'qcow2',
        virtio: true,
        networks: req.networks ?? [],
        name,
      });
      const staging = remote
        ? path.join(
            STAGING_ROOT,
            `${name}-${createHash('sha256').update(`${node.name}\0${pool}\0${name}`).digest('hex').slice(0, 12)}`,
          )
        : undefined;
      const fingerprint = await this.fingerprint(req, node.name, pool, uri, name);
      const xmlPath = path.posix.join(pool, `${name}.xml`);
      const consoleLog = path.posix.join(pool, `${name}-console.log`);
      let resume: Resume | undefined;
      /** The earlier run's files this run resumes with. */
      let kept: string[] = [];
      const record = await ImportRecord.acquire(
        node,
        pool,
        name,
        uri,
        this.log,
        async (stale) => {
          const same = stale.fingerprint === fingerprint;
          // A staged run also keeps what later stages finished (each recorded once done); once
          // placed, the conversion is in the pool (a remote node's staging copy is gone).
          const placedFiles = stale.placed
            ? [...stale.placed.disks.map((d) => d.path), xmlPath]
            : [];
          const placed =
            !!staged &&
            same &&
            !!stale.placed &&
            !!stale.domainUuid &&
            (await this.allThere(node, placedFiles));
          if (
            same &&
            stale.converted &&
            (placed || (await this.intact(remote ? this.local : node, stale.converted)))
          ) {
            resume = { converted: stale.converted };
            const keep = remote ? [] : stale.converted.disks.map((d) => d.path);
            if (placed && stale.placed && stale.domainUuid) {
              resume.placed = stale.placed;
              resume.uuid = stale.domainUuid;
              keep.push(...placedFiles, consoleLog);
              if (stale.defined && (await this.domainExists(conn, stale.domainUuid))) {
                resume.defined = true;
                resume.started = stale.domainStarted;
              }
            }
            if (!staged || stale.owner !== staged.owner) {
              this.log.warn(
                `${name}: the conversion of the dead import is complete: resuming after it`,
              );
            }
            await this.cleanStale(node, pool, name, stale, {
              keep,
              keepStaging: true,
              keepDomain: !!resume.defined,
            });
            kept = keep;
          } else {
            await this.cleanStale(node, pool, name, stale, { keep: [], keepStaging: false });
          }
        },
        staged?.owner,
      );
      // Registered first, so it runs last: what the record lists is gone by then. A staged run
      // keeps the record for the next stage (its last run releases it; discard removes all).
      if (!staged) {
        this.cleanup.defer(`release the import record ${record.path}`, () => record.release());
      } else {
        // However the stage run ends, the next may take the record (nothing once released).
        this.cleanup.defer(`hand on the import record ${record.path}`, () => record.pause());
      }
      const resumed = resume as Resume | undefined;
      let keptHandle: { dismiss(): void } | undefined;
      if (resumed) {
        // What the earlier run finished is this run's now: recorded at once (the whole record
        // follows below), so a failure before that loses none of it; an import that is not
        // staged removes it when it fails, as it does its own outputs.
        await record.update({
          outputs: kept,
          staging,
          fingerprint,
          converted: resumed.converted,
          placed: resumed.placed,
          defined: resumed.defined,
          domainStarted: resumed.started,
          ...(resumed.uuid ? { domainUuid: resumed.uuid } : {}),
        });
        if (!staged) {
          keptHandle = this.cleanup.defer(
            `remove the resumed files of the failed import of ${name}`,
            () => this.removeOutputs(node, pool, kept),
          );
        }
      }

      const existing = resume?.defined
        ? undefined
        : await retry('look up the domain name', () =>
            conn.lookupByName(name).then(
              (d) => d,
              (e: unknown) => {
                if (isNotFound(e)) return undefined;
                throw e;
              },
            ),
          );
      if (existing) {
        throw new ImportError(`a domain named ${name} exists already on ${uri} on ${node.name}`, {
          hint: 'give another --name, or remove that domain first',
        });
      }
      const disks = layout.disks.map((d) => d.output);
      const taken: string[] = [];
      const reused = new Set([
        ...(!remote && resume ? disks : []),
        ...(resume?.placed ? [...resume.placed.disks.map((d) => d.path), xmlPath, consoleLog] : []),
      ]);
      for (const f of [...disks, xmlPath, consoleLog]) {
        if (!reused.has(f) && (await node.stat(f))) taken.push(f);
      }
      if (taken.length) {
        throw new ImportError(`already on ${node.name}, not overwritten: ${taken.join(', ')}`, {
          hint: 'remove them, or give another --name or --pool',
        });
      }
      let uuid = resume?.uuid ?? source.uuid?.toLowerCase();
      if (uuid && !resume?.uuid) {
        const holder = await retry('look up the source UUID', () =>
          conn.lookupByUuid(uuid as string).then(
            (d) => d.name,
            (e: unknown) => {
              if (isNotFound(e)) return undefined;
              throw e;
            },
          ),
        );
        if (holder) {
          warn(`domain ${holder} has the source's UUID ${uuid} on ${uri}: ${name} gets a new one`);
          uuid = undefined;
        }
      }
      await record.update({
        outputs: [...disks, xmlPath, consoleLog],
        staging,
        fingerprint,
        converted: resume?.converted,
        placed: resume?.placed,
        defined: resume?.defined,
        domainStarted: resume?.started,
        ...(resume?.uuid ? { domainUuid: resume.uuid } : {}),
      });
      // A staged run leaves the outputs of its finished stages to the next one.
      const outputs = staged
        ? { dismiss: () => {} }
        : this.cleanup.defer(`remove the files of the failed import of ${name}`, () =>
            this.removeOutputs(node, pool, [...disks, xmlPath, consoleLog]),
          );
      keptHandle?.dismiss(); // among the outputs: the handle above covers them
      if (staging && !resume?.placed) {
        if (!resume) await this.local.remove(staging, { recursive: true });
        await this.local.mkdir(staging, { recursive: true, mode: 0o755 });
        if (!staged) {
          this.cleanup.defer(`remove the staging directory ${staging}`, () =>
            this.local.remove(staging, { recursive: true }),
          );
        }
      }
      return {
        kind,
        readerOptions,
        name,
        node,
        conn,
        cleanupConn,
        record,
        staging,
        xmlPath,
        consoleLog,
        uuid: uuid ?? randomUUID(),
        outputs,
        resume,
        domainType,
      };
    });
    const { node, conn, record, name, xmlPath, consoleLog, uuid } = prep;
    const done = (reached: ImportStage, disks: ImportedDisk[], state: string): ImportResult => ({
      name,
      uuid,
      node: node.name,
      uri,
      pool,
      source: (prep.resume?.converted ?? converted)?.source as ImportResult['source'],
      guest: (prep.resume?.converted ?? converted)?.guest as ImportResult['guest'],
      disks,
      xmlPath,
      consoleLog,
      state,
      warnings,
      stages,
      convertStages: (prep.resume?.converted ?? converted)?.stages ?? {},
      resumed: !!prep.resume,
      reached,
    });
    let converted: ConvertedRecord | undefined;

    // Convert, on this machine: into the pool itself, or into the staging directory.
    converted = await stage('convert', async () => {
      if (prep.resume) {
        if (!staged) {
          warn(
            `the conversion of an import killed after it was reused (${prep.resume.converted.disks.map((d) => d.path).join(', ')})`,
          );
        }
        return prep.resume.converted;
      }
      const creq: ConvertRequest = {
        source: req.source,
        input: prep.kind,
        readerOptions: prep.readerOptions,
        outputDir: prep.staging ?? pool,
        name,
        storage: req.storage ?? 'copy',
        outputFormat: req.outputFormat ?? 'qcow2',
        virtio: true,
        domainType: prep.domainType,
        accel: req.accel,
        networks: req.networks ?? [],
        withFiles: req.withFiles ?? {},
        dryRun: false,
        verifyBoot: false,
        applianceSmp: req.applianceSmp,
      };
      const r = await this.converter.convert(creq, (e: ConvertEvent) => {
        if (e.type === 'stage') onEvent({ ...e, type: 'convert-stage' });
        else if (e.type === 'progress') {
          onEvent({
            type: 'progress',
            copy: 'convert',
            disk: path.basename(e.disk),
            percent: e.percent,
          });
        } else if (e.type === 'warning') warn(e.message);
      });
      const c: ConvertedRecord = {
        disks: r.disks,
        xml: r.xml,
        source: r.source,
        guest: r.guest,
        stages: r.stages as Record<string, number>,
      };
      // From here on, a rerun after a crash starts after the conversion.
      await record.update({ converted: c });
      return c;
    });
    const conversion = converted;
    if (staged?.upTo === 'convert') {
      return done(
        'convert',
        conversion.disks.map((d) => ({ ...d, bytes: 0 })),
        'converted',
      );
    }

    // Place the disks and the XML in the pool.
    const disks: ImportedDisk[] = await stage('place', async () => {
      if (prep.resume?.placed) return prep.resume.placed.disks;
      const placed: ImportedDisk[] = [];
      const map: Record<string, string> = {};
      for (const d of conversion.disks) {
        const to = path.posix.join(pool, path.basename(d.path));
        map[d.path] = to;
        if (!remote) {
          const st = await node.stat(to);
          placed.push({ path: to, format: d.format, dev: d.dev, bytes: st?.size ?? 0 });
          continue;
        }
        const p = await placeFile(node, d.path, to, {
          cleanup: this.cleanup,
          onProgress: (pr: CopyProgress) =>
            onEvent({
              type: 'progress',
              copy: 'place',
              disk: path.basename(to),
              percent: pr.percent,
            }),
        });
        placed.push({ path: to, format: d.format, dev: d.dev, bytes: p.bytes, sha256: p.sha256 });
      }
      const xml = placeDomainXml(conversion.xml, { disks: map, uuid, consoleLog });
      const tmp = tempSibling(xmlPath);
      const h = this.cleanup.defer(`remove ${tmp}`, () => node.remove(tmp));
      await node.writeFileAtomic(tmp, xml, { mode: 0o644 });
      // The converter wrote the XML into the pool when the node is this machine: ours to replace.
      await node.rename(tmp, xmlPath, { noReplace: remote });
      h.dismiss();
      if (staged) {
        // The UUID is in the XML placed: the next stage run defines that one.
        await record.update({ placed: { disks: placed }, domainUuid: uuid });
        if (prep.staging) await this.local.remove(prep.staging, { recursive: true });
      }
      return placed;
    });
    if (staged?.upTo === 'place') return done('place', disks, 'placed');

    // Define: the UUID is recorded first, so a crash right after leaves a domain we can find.
    await record.update({ domainUuid: uuid });
    const domainHandle = staged
      ? { dismiss: () => {} }
      : this.cleanup.defer(`remove domain ${name} of the failed import`, () =>
          this.removeDomain(prep.cleanupConn, uuid),
        );
    const domain: Domain = await stage('define', async () => {
      if (prep.resume?.defined) {
        return retry(`look up domain ${name}`, () => conn.lookupByUuid(uuid));
      }
      const xml = (await node.readFile(xmlPath)).toString('utf8');
      const d = await retry(`define domain ${name}`, () => conn.define(xml));
      if (staged) await record.update({ defined: true });
      return d;
    });
    if (staged?.upTo === 'define') return done('define', disks, 'defined');

    let verify: BootVerdict | undefined;
    if (req.start ?? true) {
      await stage('start', () =>
        retry(`start domain ${name}`, async () => {
          try {
            await domain.start();
          } catch (e) {
            // A start cut off by a libvirtd restart may have happened: running is what we want.
            // (So is a domain a finished earlier stage run started.)
            if (isOperationInvalid(e) && (await domain.isActive())) return;
            throw e;
          }
        }),
      );
      if (staged) await record.update({ domainStarted: true });
      if (staged?.upTo === 'start' && req.verifyBoot) {
        return done('start', disks, (await domain.getState()).state);
      }
      if (req.verifyBoot) {
        verify = await stage('verify-boot', () =>
          watchBoot(node, domain, consoleLog, {
            timeoutMs: req.verifyTimeoutMs ?? 300_000,
            signal: this.signal,
            log: this.log,
          }),
        );
        if (!verify.booted) {
          throw new ImportError(
            `${name} did not boot on ${node.name}: ${verify.reason}\n${verify.consoleTail.replace(/^/gm, '  | ')}`,
            { hint: 'the import was removed; convert it with `v2v-load convert` to look at it' },
          );
        }
      }
    }
    const state = await retry(`state of ${name}`, () => domain.getState());
    // Success: the domain and its files are the user's now.
    domainHandle.dismiss();
    prep.outputs.dismiss();
    // A staged run keeps the record: the item's end (finish) removes it, once the queue took
    // every stage's result; a run of this stage again (its result lost) then resumes.
    return {
      name,
      uuid,
      node: node.name,
      uri,
      pool,
      source: conversion.source as ImportResult['source'],
      guest: conversion.guest,
      disks,
      xmlPath,
      consoleLog,
      state: state.state,
      verify,
      warnings,
      stages,
      convertStages: conversion.stages,
      resumed: !!prep.resume,
    };
  }

  /**
   * Removes everything a staged import of `req` made (its domain, disks, XML, console log,
   * staging) and its record: the item failed for good. Nothing to do when no record is there
   * (or the source cannot be read, so no name is known: then no stage made anything).
   */
  async discard(req: ImportRequest, owner: string): Promise<void> {
    const at = await this.recordOf(req);
    if (!at) return;
    const { node, pool, name, uri } = at;
    const record = await ImportRecord.acquire(
      node,
      pool,
      name,
      uri,
      this.log,
      (stale) => this.cleanStale(node, pool, name, stale, { keep: [], keepStaging: false }),
      owner,
    );
    await record.release();
  }

  /**
   * A staged import's item is done (the queue has every stage's result): its record goes, and
   * with it nothing else (the domain and its files are the user's). Nothing to do when it is
   * gone already.
   */
  async finish(req: ImportRequest, owner: string): Promise<void> {
    const at = await this.recordOf(req);
    if (at) await ImportRecord.finish(at.node, at.pool, at.name, owner, this.log);
  }

  /** Where a staged import of `req` keeps its record, when it has one. */
  private async recordOf(
    req: ImportRequest,
  ): Promise<{ node: Node; pool: string; name: string; uri: string } | undefined> {
    let name = req.name;
    if (!name) {
      try {
        const kind = req.input ?? guessKind(req.source);
        const reader = readerFor(kind, this.readers);
        name = (await this.readSource(reader, req.source, req.readerOptions ?? {})).name;
      } catch {
        return undefined; // the source cannot be read: no import of it made anything
      }
    }
    const pool = req.pool ?? DEFAULT_POOL;
    const uri = req.connect ?? DEFAULT_LIBVIRT_URI;
    const node = await this.nodes.get(req.target ?? {});
    if (!(await node.stat(ImportRecord.fileFor(pool, name)))) return undefined;
    return { node, pool, name, uri };
  }

  private async readSource(reader: MetadataReader, source: string[], options: ReaderOptions) {
    const dir = scratchName('/var/tmp/v2v-load-import-');
    await this.local.mkdir(dir, { mode: 0o700 });
    try {
      return await reader.read(source, options, {
        node: this.local,
        log: this.log,
        tmpDir: dir,
        signal: this.signal,
      });
    } finally {
      await this.local.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /** Removes `files` and their temporary siblings from the pool. */
  private async removeOutputs(node: Node, pool: string, files: readonly string[]): Promise<void> {
    const entries = await node.list(pool).catch(() => []);
    for (const e of entries) {
      if (files.some((f) => isTempSiblingOf(e.name, f))) {
        await node.remove(path.posix.join(pool, e.name)).catch(() => {});
      }
    }
    for (const f of files) await node.remove(f);
  }

  /** Stops and undefines the domain with `uuid`, if it exists. */
  private async removeDomain(conn: LibvirtConnection, uuid: string): Promise<void> {
    const dom = await withLibvirtRetry('look up the domain to remove', () =>
      conn.lookupByUuid(uuid).then(
        (d) => d,
        (e: unknown) => {
          if (isNotFound(e)) return undefined;
          throw e;
        },
      ),
    );
    if (!dom) return;
    if (await dom.isActive().catch(() => false)) await dom.destroy().catch(() => {});
    await dom.undefine({ nvram: true }).catch(() => dom.undefine());
  }

  /**
   * Removes what a dead import of the same name into the same pool made, except `keep` (its
   * finished conversion in the pool, when resuming); a resumed import keeps its staging too.
   */
  private async cleanStale(
    node: Node,
    pool: string,
    name: string,
    stale: ImportRecordData,
    {
      keep,
      keepStaging,
      keepDomain,
    }: { keep: readonly string[]; keepStaging: boolean; keepDomain?: boolean },
  ): Promise<void> {
    if (stale.domainUuid && !keepDomain) {
      await this.removeDomain(new LibvirtConnection(node, stale.uri), stale.domainUuid);
    }
    await this.removeOutputs(
      node,
      pool,
      stale.outputs.filter((o) => !keep.includes(o)),
    );
    await this.removeDeadConverterRecord(node, path.posix.join(pool, `.${name}.v2v-load-run`));
    if (!keepStaging && stale.staging?.startsWith(`${STAGING_ROOT}/`)) {
      await fs.rm(stale.staging, { recursive: true, force: true });
    }
  }

  /** Removes a converter run record whose owner (a process of this machine) is dead. */
  private async removeDeadConverterRecord(node: Node, file: string): Promise<void> {
    const text = await node.readFile(file).then(
      (b) => b.toString(),
      () => undefined,
    );
    if (text === undefined) return;
    let owner: { host?: string; pid?: number } = {};
    try {
      owner = JSON.parse(text) as typeof owner;
    } catch {
      return;
    }
    if (owner.host === os.hostname() && owner.pid && !(await pidAlive(owner.pid))) {
      await node.remove(file);
    }
  }

  private async allThere(node: Node, files: readonly string[]): Promise<boolean> {
    for (const f of files) if (!(await node.stat(f))) return false;
    return true;
  }

  private async domainExists(conn: LibvirtConnection, uuid: string): Promise<boolean> {
    return withLibvirtRetry('look up the domain', () =>
      conn.lookupByUuid(uuid).then(
        () => true,
        (e: unknown) => {
          if (isNotFound(e)) return false;
          throw e;
        },
      ),
    );
  }

  /** True when every converted disk is there, whole (qemu-img reads it). */
  private async intact(where: Node, c: ConvertedRecord): Promise<boolean> {
    for (const d of c.disks) {
      const ok = await where
        // -U: the dead import's domain may still run on the disk (and hold its write lock).
        .run(['qemu-img', 'info', '-U', '--output=json', '-f', d.format, d.path], {
          reject: false,
        })
        .then((r) => r.exitCode === 0);
      if (!ok) return false;
    }
    return true;
  }

  /** What the import is asked to do; the sources by size and time. */
  private async fingerprint(
    req: ImportRequest,
    node: string,
    pool: string,
    uri: string,
    name: string,
  ): Promise<string> {
    const sources: string[] = [];
    for (const s of req.source) {
      const st = await fs.stat(s).catch(() => undefined);
      sources.push(`${s}:${st?.size ?? '-'}:${st?.mtimeMs ?? '-'}`);
    }
    return createHash('sha256')
      .update(
        JSON.stringify({
          sources,
          node,
          pool,
          uri,
          name,
          input: req.input,
          storage: req.storage ?? 'copy',
          outputFormat: req.outputFormat ?? 'qcow2',
          domainType: req.domainType ?? 'auto',
          networks: req.networks ?? [],
          withFiles: req.withFiles ?? {},
        }),
      )
      .digest('hex');
  }
}
