/**
 * qemu-img on a node, done right: every call names the format (`-f`, and `-F` for a backing
 * file) so qemu-img never probes an untrusted image; JSON output only; a backing chain is
 * walked one image at a time and every backing file must resolve (symlinks followed) into an
 * allowed directory before qemu-img is let near it; VMDK extents are checked likewise. Then
 * qemu-img is given the checked chain itself ({@link chainSpec}: a `json:` description naming
 * each checked file and its format), so it never follows a name recorded in an image: a
 * symlink swapped after the check is never opened. A source is checked for damage
 * ({@link QemuImg.verifySource}) before it is copied or converted.
 */
import * as path from 'node:path';
import { CommandError } from '../errors.js';
import type { Node } from '../node/node.js';
import { BackingFileRefusedError, StorageError } from './errors.js';
import { type ImageFormat, type ImageRef, isImageFormat, sniffFormat } from './image-format.js';
import { readVmdk } from './vmdk.js';

const QEMU_IMG = 'qemu-img';
const MAX_CHAIN = 64;
const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const LONG_TIMEOUT_MS = 48 * 3600_000;

/** One image of a chain, from `qemu-img info --output=json`. */
export interface ImageInfo {
  /** Absolute path on the node. */
  path: string;
  format: ImageFormat;
  virtualBytes: number;
  /** Allocated bytes on disk (for a VMDK: all its extents). */
  actualBytes: number;
  clusterSize?: number | undefined;
  /** The backing file as recorded in the image. */
  backingFilename?: string | undefined;
  backingFormat?: string | undefined;
  dirty: boolean;
  /** Internal snapshots. */
  snapshots: SnapshotInfo[];
  /** The real path of a qcow2 external data file, once checked ({@link QemuImg.info}). */
  checkedDataFile?: string | undefined;
  /** The parsed JSON as qemu-img wrote it. */
  raw: Record<string, unknown>;
}

/** An internal snapshot. */
export interface SnapshotInfo {
  id: string;
  name: string;
  vmStateBytes: number;
  dateSec: number;
}

/** `qemu-img check --output=json`. */
export interface CheckResult {
  /** True when no corruption and no check error was found (leaks are tolerated). */
  ok: boolean;
  corruptions: number;
  leaks: number;
  checkErrors: number;
  /** Where qemu-img says the image's data ends (qcow2, qed), when it says so. */
  imageEndOffset?: number | undefined;
  raw: Record<string, unknown>;
}

/** `qemu-img measure --output=json`. */
export interface MeasureResult {
  requiredBytes: number;
  fullyAllocatedBytes: number;
}

/** Progress of a long operation. */
export interface ProgressEvent {
  /** 0..100 */
  percent: number;
}

/** Options of {@link QemuImg.convert}. */
export interface ConvertOptions {
  /** Sparse output (default true): zeroes are not written. */
  sparse?: boolean;
  /** Parallel coroutines (`-m`, 1..16). */
  coroutines?: number;
  /** Out-of-order writes (`-W`). */
  outOfOrder?: boolean;
  /** `-o` options, e.g. { compat: '1.1' }. */
  options?: Record<string, string>;
  /** Called as qemu-img reports progress. */
  onProgress?: (e: ProgressEvent) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Options of {@link QemuImg.create}. */
export interface CreateOptions {
  /** Virtual size in bytes; default: the backing file's. */
  sizeBytes?: number;
  backing?: ImageRef;
  options?: Record<string, string>;
}

/** Extracts every "(NN.NN/100%)" of qemu-img's `-p` output. */
export function parseProgress(text: string): number[] {
  return [...text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)].map((m) => Number(m[1]));
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * Parses the JSON of `qemu-img info --output=json` for one image (not `--backing-chain`).
 * @throws StorageError naming the file when the JSON is not what qemu-img writes
 */
export function parseInfoJson(text: string, file: string): ImageInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StorageError(file, 'qemu-img info did not print JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new StorageError(file, 'qemu-img info printed JSON that is not an object');
  }
  const o = raw as Record<string, unknown>;
  const format = String(o.format ?? '');
  if (!isImageFormat(format)) throw new StorageError(file, `qemu-img reports format "${format}"`);
  const snaps = Array.isArray(o.snapshots) ? (o.snapshots as Record<string, unknown>[]) : [];
  return {
    path: file,
    format,
    virtualBytes: num(o['virtual-size']),
    actualBytes: num(o['actual-size']),
    clusterSize: typeof o['cluster-size'] === 'number' ? o['cluster-size'] : undefined,
    backingFilename: typeof o['backing-filename'] === 'string' ? o['backing-filename'] : undefined,
    backingFormat:
      typeof o['backing-filename-format'] === 'string' ? o['backing-filename-format'] : undefined,
    dirty: o['dirty-flag'] === true,
    snapshots: snaps.map((s) => ({
      id: String(s.id ?? ''),
      name: String(s.name ?? ''),
      vmStateBytes: num(s['vm-state-size']),
      dateSec: num(s['date-sec']),
    })),
    raw: o,
  };
}

/**
 * Parses the JSON array of `qemu-img info --output=json --backing-chain`, top first.
 * @throws StorageError naming the file when it is not an array of image objects
 */
export function parseInfoChainJson(text: string, file: string): ImageInfo[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StorageError(file, 'qemu-img info --backing-chain did not print JSON');
  }
  if (!Array.isArray(raw))
    throw new StorageError(file, 'qemu-img info --backing-chain printed no array');
  return raw.map((o, i) => {
    const name = typeof o?.filename === 'string' ? o.filename : `${file}[${i}]`;
    return parseInfoJson(JSON.stringify(o), name);
  });
}

/**
 * Parses `qemu-img check --output=json` (qemu-img exits 2 on corruption, 3 on leaks).
 * @throws StorageError naming the file when the JSON is not there
 */
export function parseCheckJson(text: string, file: string): CheckResult {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new StorageError(file, 'qemu-img check did not print JSON');
  }
  const corruptions = num(o.corruptions);
  const leaks = num(o.leaks);
  const checkErrors = num(o['check-errors']);
  const end = o['image-end-offset'];
  return {
    ok: corruptions === 0 && checkErrors === 0,
    corruptions,
    leaks,
    checkErrors,
    imageEndOffset: typeof end === 'number' ? end : undefined,
    raw: o,
  };
}

/**
 * Parses `qemu-img measure --output=json`.
 * @throws StorageError naming the file when the JSON is not there
 */
export function parseMeasureJson(text: string, file: string): MeasureResult {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.required !== 'number') throw new Error('no "required"');
    return { requiredBytes: o.required, fullyAllocatedBytes: num(o['fully-allocated']) };
  } catch {
    throw new StorageError(file, 'qemu-img measure did not print the expected JSON');
  }
}

/** The external data file of a qcow2 image, if it has one. */
export function dataFileOf(info: ImageInfo): string | undefined {
  const fs = info.raw['format-specific'] as { data?: Record<string, unknown> } | undefined;
  const v = fs?.data?.['data-file'];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The `json:` pseudo-filename of a checked chain, top first: each image is opened by the path
 * in `chain` (the real path the policy checked, for every backing file) with its format, and
 * the last one gets `"backing": null`. qemu then never opens a backing file (or a qcow2 data
 * file) by the name recorded in an image, and never probes a format.
 */
export function chainSpec(
  chain: readonly Pick<ImageInfo, 'path' | 'format' | 'checkedDataFile'>[],
): string {
  const at = (i: number): Record<string, unknown> => {
    const img = chain[i];
    if (!img) throw new RangeError('chainSpec: empty chain');
    return {
      driver: img.format,
      file: { driver: 'file', filename: img.path },
      ...(img.checkedDataFile === undefined
        ? {}
        : { 'data-file': { driver: 'file', filename: img.checkedDataFile } }),
      backing: i + 1 < chain.length ? at(i + 1) : null,
    };
  };
  return `json:${JSON.stringify(at(0))}`;
}

/** A disk image stored in an uncompressed archive: an OVA's tar member, by its byte range. */
export interface ArchivedImage {
  archive: string;
  member: string;
  offset: number;
  size: number;
  format: ImageFormat;
}

/**
 * The `json:` description of an archived disk: its format over the member's byte range. qemu
 * wants the range in whole 512-byte sectors; a tar member is padded to them anyway.
 */
export function memberSpec(m: ArchivedImage): string {
  return `json:${JSON.stringify({
    driver: m.format,
    file: {
      driver: 'raw',
      offset: m.offset,
      size: Math.ceil(m.size / 512) * 512,
      file: { driver: 'file', filename: m.archive },
    },
  })}`;
}

/** Formats whose damage `qemu-img check` finds. */
const CHECKABLE: readonly ImageFormat[] = ['qcow2', 'qed', 'vmdk', 'vdi', 'vhdx'];

/**
 * The bytes a VDI image's header says its file holds (data offset + allocated blocks), or
 * undefined when `head` is no VDI header. `qemu-img check` does not notice a truncated VDI.
 */
export function vdiDeclaredBytes(head: Buffer): number | undefined {
  if (head.length < 0x188 || head.readUInt32LE(0x40) !== 0xbeda107f) return undefined;
  const offsetData = head.readUInt32LE(0x158);
  const blockSize = head.readUInt32LE(0x178);
  const allocated = head.readUInt32LE(0x184);
  return offsetData + allocated * blockSize;
}

function optionString(options: Record<string, string> | undefined): string[] {
  if (!options || Object.keys(options).length === 0) return [];
  for (const [k, v] of Object.entries(options)) {
    if (!/^[a-z][\w.-]*$/i.test(k) || v.includes(',')) {
      throw new StorageError(k, `qemu-img option ${k}=${v} is not allowed`);
    }
  }
  return [
    '-o',
    Object.entries(options)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  ];
}

function firstLines(text: string): string {
  return text
    .trim()
    .split('\n')
    .slice(0, 3)
    .join(' / ')
    .replace(/^qemu-img:\s*/, '');
}

/** qemu-img's messages with each `json:` argument replaced by the image's name. */
function withoutSpecs(text: string, argv: readonly string[], file: string): string {
  let t = text;
  for (const a of argv) if (a.startsWith('json:')) t = t.replaceAll(a, file);
  return t;
}

/** True when qemu's name of a VMDK extent is the archive itself (or a range of it). */
function inArchive(filename: string, archive: string): boolean {
  if (filename === archive) return true;
  if (!filename.startsWith('json:')) return false;
  try {
    const o = JSON.parse(filename.slice(5)) as {
      filename?: unknown;
      file?: { filename?: unknown };
    };
    return (o.file?.filename ?? o.filename) === archive;
  } catch {
    return false;
  }
}

function isUnder(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** qemu-img on one node, with a backing-file policy. */
export class QemuImg {
  private readonly realDirs = new Map<string, Promise<string>>();

  /**
   * @param node where qemu-img runs and the images live
   * @param allowedDirs directories a backing file (or VMDK extent) may live in; an image's own
   *   directory is always allowed for its backing file
   */
  constructor(
    readonly node: Node,
    readonly allowedDirs: readonly string[] = [],
  ) {}

  private async run(argv: string[], file: string, timeoutMs = DEFAULT_TIMEOUT_MS) {
    try {
      return await this.node.run([QEMU_IMG, ...argv], { timeoutMs });
    } catch (e) {
      if (e instanceof CommandError && e.code === 'COMMAND_FAILED') {
        const said = firstLines(withoutSpecs(e.stderr, argv, file));
        throw new StorageError(file, `qemu-img ${argv[0]} failed: ${said}`, { cause: e });
      }
      throw e;
    }
  }

  /** The same node and policy, with `dirs` allowed too (e.g. a source the user named). */
  allowing(...dirs: string[]): QemuImg {
    return new QemuImg(this.node, [...this.allowedDirs, ...dirs]);
  }

  /** realpath of `p` on the node; undefined when it does not exist. */
  async realpath(p: string): Promise<string | undefined> {
    const r = await this.node.run(['realpath', '-e', '--', p], {
      reject: false,
      timeoutMs: 30_000,
    });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  private realDir(dir: string): Promise<string> {
    let p = this.realDirs.get(dir);
    if (!p) {
      p = this.realpath(dir).then((r) => r ?? path.resolve(dir));
      this.realDirs.set(dir, p);
    }
    return p;
  }

  /**
   * Checks that `backing` (as recorded in `image`) resolves into an allowed directory (or its
   * subdirectories), or, with `sameDir`, into the very directory of `image` (not below it).
   * @returns its real path
   * @throws BackingFileRefusedError naming the image and the backing file
   */
  async checkBacking(image: string, backing: string, sameDir = false): Promise<string> {
    if (backing.startsWith('json:') || /^[a-z][\w+.-]*:/i.test(backing)) {
      throw new BackingFileRefusedError(
        image,
        `backing file "${backing}" is not a plain path; refused`,
      );
    }
    const resolved = path.isAbsolute(backing) ? backing : path.join(path.dirname(image), backing);
    const real = await this.realpath(resolved);
    if (!real) throw new StorageError(image, `backing file ${resolved} does not exist`);
    const own = path.dirname(image);
    if (sameDir && path.dirname(real) === (await this.realDir(own))) return real;
    for (const d of this.allowedDirs) if (isUnder(real, await this.realDir(d))) return real;
    const dirs = [...this.allowedDirs, ...(sameDir ? [`${own} (itself only)`] : [])];
    throw new BackingFileRefusedError(
      image,
      `backing file ${backing} (${real}) is outside the allowed directories ` +
        `(${dirs.join(', ') || 'none'}); refused`,
      {
        hint: 'a disk image may name any host file as its backing file: allow its directory only if you trust it',
      },
    );
  }

  /** Explains a failed open: a declared format that does not match the file's magic. */
  private async explainFormat(ref: ImageRef, e: StorageError): Promise<never> {
    const seen = await sniffFormat(this.node, ref.path).catch(() => undefined);
    if (seen && seen !== ref.format && seen !== 'raw') {
      throw new StorageError(
        ref.path,
        `declared format ${ref.format} but the file looks like ${seen}: ${e.message}`,
        { cause: e, hint: 'give the right format; v2v-load never lets qemu-img guess it' },
      );
    }
    if (seen === 'raw' && ref.format !== 'raw') {
      throw new StorageError(
        ref.path,
        `declared format ${ref.format} but the file is no ${ref.format} image: ${e.message}`,
        { cause: e },
      );
    }
    throw e;
  }

  /**
   * `qemu-img info --output=json -f FORMAT` of one image (its backing file is not opened).
   * A VMDK's extents are checked first.
   */
  async info(ref: ImageRef): Promise<ImageInfo> {
    if (ref.format === 'vmdk') {
      const layout = await readVmdk(this.node, ref.path);
      // A truncated sparse VMDK opens fine and reads zeroes where its grains were cut off:
      // `qemu-img check` sees grains past the end of the file.
      if (layout.extents.some((e) => e.type.includes('SPARSE'))) {
        const c = await this.check(ref);
        if (!c.ok) {
          throw new StorageError(
            ref.path,
            `VMDK is damaged: ${c.corruptions} corruptions (qemu-img check)`,
          );
        }
      }
    }
    let r: Awaited<ReturnType<QemuImg['run']>>;
    try {
      r = await this.run(['info', '--output=json', '-f', ref.format, ref.path], ref.path);
    } catch (e) {
      if (e instanceof StorageError) return this.explainFormat(ref, e);
      throw e;
    }
    const info = parseInfoJson(r.stdout, ref.path);
    // A qcow2 external data file holds the guest's data: a hostile one names a host file.
    const dataFile = dataFileOf(info);
    if (dataFile !== undefined) {
      info.checkedDataFile = await this.checkBacking(ref.path, dataFile, true).catch(
        (e: unknown) => {
          if (e instanceof BackingFileRefusedError) {
            throw new BackingFileRefusedError(
              ref.path,
              e.message.replace(`${ref.path}: backing file`, 'external data file'),
              { hint: e.hint },
            );
          }
          throw e;
        },
      );
    }
    return info;
  }

  /**
   * The whole backing chain, top first, walked one image at a time: each backing file must be
   * recorded with its format and resolve into an allowed directory (or the directory of the
   * image that names it when `sameDirAllowed`) before it is opened.
   * @throws BackingFileRefusedError on a backing file outside the allowed directories, or one
   *   without a recorded format (qemu-img would probe it)
   */
  async infoChain(ref: ImageRef, sameDirAllowed = true): Promise<ImageInfo[]> {
    const chain: ImageInfo[] = [];
    const seen = new Set<string>();
    let cur: ImageRef = ref;
    for (;;) {
      const info = await this.info(cur);
      chain.push(info);
      if (info.backingFilename === undefined || info.backingFilename === '') return chain;
      if (chain.length >= MAX_CHAIN) {
        throw new StorageError(ref.path, `backing chain longer than ${MAX_CHAIN} images`);
      }
      const fmt = info.backingFormat;
      if (!fmt || !isImageFormat(fmt)) {
        throw new BackingFileRefusedError(
          cur.path,
          `backing file ${info.backingFilename} has ${fmt ? `unknown format "${fmt}"` : 'no recorded format'}; qemu-img would probe it: refused`,
          {
            hint: `record it: qemu-img rebase -u -f ${cur.format} -b BACKING -F FORMAT ${cur.path}`,
          },
        );
      }
      const real = await this.checkBacking(cur.path, info.backingFilename, sameDirAllowed);
      if (seen.has(real) || real === ref.path) {
        throw new StorageError(ref.path, `backing chain loops at ${real}`);
      }
      seen.add(real);
      cur = { path: real, format: fmt };
    }
  }

  /**
   * `qemu-img info --output=json --backing-chain`, run only after {@link infoChain} has checked
   * every backing file: qemu-img's own view of the chain (paths as qemu-img resolved them).
   */
  async infoBackingChain(ref: ImageRef): Promise<ImageInfo[]> {
    await this.infoChain(ref);
    const argv = ['info', '--output=json', '--backing-chain', '-f', ref.format, ref.path];
    return parseInfoChainJson((await this.run(argv, ref.path)).stdout, ref.path);
  }

  /**
   * `qemu-img convert -f SRC -O DST`, after checking the source's chain; `-p` progress becomes
   * `onProgress` events. The output is sparse unless `sparse: false`.
   */
  async convert(src: ImageRef, dst: ImageRef, opts: ConvertOptions = {}): Promise<void> {
    const chain = await this.infoChain(src);
    await this.verifySource(chain);
    return this.convertSpec(chainSpec(chain), src.path, dst, opts);
  }

  /**
   * Converts a disk stored in an uncompressed archive (an OVA's tar member) straight out of
   * the archive: qemu reads only the member's byte range; nothing is extracted.
   */
  async convertMember(m: ArchivedImage, dst: ImageRef, opts: ConvertOptions = {}): Promise<void> {
    await this.infoMember(m);
    return this.convertSpec(memberSpec(m), m.archive, dst, opts);
  }

  /**
   * A qcow2 overlay whose backing is the archived disk's byte range (for a read-only look:
   * the storage layer refuses `json:` backing files everywhere else).
   */
  async overlayOnMember(m: ArchivedImage, overlay: string): Promise<void> {
    const info = await this.infoMember(m);
    const argv = ['create', '-q', '-f', 'qcow2', '-u', '-b', memberSpec(m), '-F', m.format];
    await this.run([...argv, overlay, String(info.virtualBytes)], m.archive);
  }

  /** `qemu-img measure` of an archived disk. */
  async measureMember(m: ArchivedImage, targetFormat: ImageFormat): Promise<MeasureResult> {
    await this.infoMember(m);
    const argv = ['measure', '--output=json', '-O', targetFormat, memberSpec(m)];
    return parseMeasureJson((await this.run(argv, m.archive)).stdout, m.archive);
  }

  /**
   * `qemu-img info` of an archived disk, checked like a file: it may not name a backing file
   * or an external data file, and a VMDK's extents must all lie inside the member (a
   * descriptor naming another file would read outside the archive).
   */
  async infoMember(m: ArchivedImage): Promise<ImageInfo> {
    const label = `${m.archive} (${m.member})`;
    if (!Number.isSafeInteger(m.offset) || m.offset < 0 || !Number.isSafeInteger(m.size)) {
      throw new StorageError(label, `member range ${m.offset}+${m.size} is not valid`);
    }
    // A VMDK in an archive must be one file (streamOptimized or monolithicSparse: magic KDMV).
    // A text descriptor would name extent files, and qemu would open them to read the header.
    if (m.format === 'vmdk') {
      const head = (
        await this.node.run(
          [
            'dd',
            `if=${m.archive}`,
            'iflag=skip_bytes,count_bytes',
            `skip=${m.offset}`,
            'count=4',
            'status=none',
          ],
          { timeoutMs: 30_000 },
        )
      ).stdoutBytes;
      if (head.toString('latin1') !== 'KDMV') {
        throw new BackingFileRefusedError(
          label,
          'the archived VMDK is not a single-file (sparse or streamOptimized) VMDK: a descriptor would name other files; refused',
        );
      }
    }
    const spec = memberSpec(m);
    let r: Awaited<ReturnType<QemuImg['run']>>;
    try {
      r = await this.run(['info', '--output=json', spec], label);
    } catch (e) {
      if (e instanceof StorageError) {
        throw new StorageError(label, `not a ${m.format} image: ${e.message}`, { cause: e });
      }
      throw e;
    }
    const info = parseInfoJson(r.stdout, label);
    if (info.backingFilename) {
      throw new BackingFileRefusedError(
        label,
        `the archived disk names a backing file (${info.backingFilename}); refused`,
      );
    }
    if (dataFileOf(info) !== undefined) {
      throw new BackingFileRefusedError(
        label,
        'the archived disk names an external data file; refused',
      );
    }
    const data = (info.raw['format-specific'] as { data?: { extents?: { filename?: string }[] } })
      ?.data;
    for (const e of data?.extents ?? []) {
      if (e.filename !== undefined && !inArchive(e.filename, m.archive)) {
        throw new BackingFileRefusedError(
          label,
          `the archived VMDK has an extent outside the archive (${e.filename}); refused`,
        );
      }
    }
    return info;
  }

  private async convertSpec(
    spec: string,
    label: string,
    dst: ImageRef,
    opts: ConvertOptions,
  ): Promise<void> {
    const argv = ['convert', '-p', '-O', dst.format];
    if (opts.sparse === false) argv.push('-S', '0');
    if (opts.coroutines !== undefined) {
      if (!Number.isInteger(opts.coroutines) || opts.coroutines < 1 || opts.coroutines > 16) {
        throw new StorageError(dst.path, `coroutines ${opts.coroutines}: must be 1..16`);
      }
      argv.push('-m', String(opts.coroutines));
    }
    if (opts.outOfOrder) argv.push('-W');
    argv.push(...optionString(opts.options), spec, dst.path);
    let last = -1;
    const onChunk = (chunk: Buffer): void => {
      for (const p of parseProgress(chunk.toString('latin1'))) {
        if (p !== last) {
          last = p;
          opts.onProgress?.({ percent: p });
        }
      }
    };
    try {
      await this.node.run([QEMU_IMG, ...argv], {
        timeoutMs: opts.timeoutMs ?? LONG_TIMEOUT_MS,
        onStdout: onChunk,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      if (e instanceof CommandError && e.code === 'COMMAND_FAILED') {
        throw new StorageError(
          label,
          `qemu-img convert to ${dst.path} failed: ${firstLines(withoutSpecs(e.stderr, argv, label))}`,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /**
   * `qemu-img create`: an overlay always with `-b` and `-F` (the backing file's chain is
   * checked first; qemu-img does not open it: `-u` with the checked virtual size), or a new
   * image of `sizeBytes`.
   */
  async create(target: ImageRef, opts: CreateOptions): Promise<void> {
    const argv = ['create', '-q', '-f', target.format];
    let size = opts.sizeBytes;
    if (opts.backing) {
      const b = opts.backing;
      if (!path.isAbsolute(b.path))
        throw new StorageError(b.path, 'backing file must be an absolute path');
      const chain = await this.infoChain(b);
      size ??= chain[0]?.virtualBytes;
      argv.push('-u', '-b', b.path, '-F', b.format);
    } else if (size === undefined) {
      throw new StorageError(target.path, 'create: give a size or a backing file');
    }
    argv.push(...optionString(opts.options), target.path);
    if (size !== undefined) argv.push(String(size));
    await this.run(argv, target.path);
  }

  /** `qemu-img commit`: writes an overlay into its backing file. */
  async commit(ref: ImageRef): Promise<void> {
    const chain = await this.infoChain(ref);
    await this.run(['commit', '-q', chainSpec(chain)], ref.path, LONG_TIMEOUT_MS);
  }

  /**
   * `qemu-img rebase` onto `backing` (checked), or onto nothing (`backing` undefined: the data
   * of the old chain is merged in). `unsafe` only rewrites the header.
   */
  async rebase(ref: ImageRef, backing: ImageRef | undefined, unsafe = false): Promise<void> {
    const chain = await this.infoChain(ref);
    const argv = ['rebase'];
    if (unsafe) argv.push('-u');
    if (backing) {
      await this.infoChain(backing);
      argv.push('-b', backing.path, '-F', backing.format);
    } else argv.push('-b', '');
    argv.push(chainSpec(unsafe ? chain.slice(0, 1) : chain));
    await this.run(argv, ref.path, LONG_TIMEOUT_MS);
  }

  /**
   * `qemu-img check --output=json` of this one image (its backing file is not opened):
   * corruption is a result, not an exception.
   */
  async check(ref: ImageRef & Pick<ImageInfo, 'checkedDataFile'>): Promise<CheckResult> {
    if (ref.format === 'vmdk') await readVmdk(this.node, ref.path);
    const argv = [QEMU_IMG, 'check', '--output=json', chainSpec([ref])];
    const r = await this.node.run(argv, { reject: false, timeoutMs: LONG_TIMEOUT_MS });
    if (r.exitCode === 0 || r.exitCode === 2 || r.exitCode === 3) {
      if (r.stdout.trim() !== '') return parseCheckJson(r.stdout, ref.path);
    }
    throw new StorageError(
      ref.path,
      `damaged or unreadable: qemu-img check failed: ${firstLines(withoutSpecs(r.stderr, argv, ref.path)) || `exit ${r.exitCode}`}`,
    );
  }

  /**
   * Refuses a damaged source before it is copied or converted: each image of a checked chain
   * goes through `qemu-img check` where its format has one (leaks are tolerated: a qcow2 or
   * QED cut short shows as corruptions, clusters past the end of the file), and a VDI file
   * must be as long as its header says (`qemu-img check` does not look). Raw images declare
   * no size; VMDK extents were checked against their descriptor by {@link info}; a truncated
   * VHD or VHDX does not open at all. (qemu-img's "image end offset" is no measure: a fresh
   * qcow2 reports one past its file's end.)
   * @throws StorageError naming the image and what is wrong
   */
  async verifySource(chain: readonly ImageInfo[]): Promise<void> {
    for (const img of chain) {
      const problems: string[] = [];
      if (CHECKABLE.includes(img.format)) {
        const c = await this.check(img);
        if (c.corruptions > 0) problems.push(`qemu-img check found ${c.corruptions} corruptions`);
        if (c.checkErrors > 0) problems.push(`qemu-img check found ${c.checkErrors} check errors`);
      }
      if (img.format === 'vdi') {
        const declared = vdiDeclaredBytes(await this.node.readFileRange(img.path, 0, 512));
        const length = await this.fileLength(img.path);
        if (declared !== undefined && declared > length) {
          problems.push(`header declares ${declared} bytes, file length ${length}`);
        }
      }
      if (problems.length > 0) {
        throw new StorageError(img.path, `damaged ${img.format} image: ${problems.join(' / ')}`, {
          hint: 'get the image again (a copy may have been cut short); v2v-load does not copy a damaged image',
        });
      }
    }
  }

  /** The length of a file, through a final symlink (the top image may be one). */
  private async fileLength(file: string): Promise<number> {
    const st = await this.node.stat(file);
    if (st?.type !== 'symlink') return st?.size ?? 0;
    return Number((await this.node.run(['stat', '-L', '-c', '%s', '--', file])).stdout.trim());
  }

  /** `qemu-img resize`; shrinking needs `shrink`. */
  async resize(ref: ImageRef, sizeBytes: number, shrink = false): Promise<void> {
    const argv = ['resize', '-q', '-f', ref.format];
    if (shrink) argv.push('--shrink');
    argv.push(ref.path, String(sizeBytes));
    await this.run(argv, ref.path);
  }

  /** Internal snapshots (from `info --output=json`). */
  async snapshotList(ref: ImageRef): Promise<SnapshotInfo[]> {
    return (await this.info(ref)).snapshots;
  }

  /** `qemu-img snapshot -c NAME`. */
  async snapshotCreate(ref: ImageRef, name: string): Promise<void> {
    await this.snapshotOp(ref, '-c', name);
  }

  /** `qemu-img snapshot -d NAME`. */
  async snapshotDelete(ref: ImageRef, name: string): Promise<void> {
    await this.snapshotOp(ref, '-d', name);
  }

  private async snapshotOp(ref: ImageRef, op: string, name: string): Promise<void> {
    if (!/^[\w.+-]{1,128}$/.test(name)) {
      throw new StorageError(ref.path, `snapshot name "${name}" is not allowed`);
    }
    // `qemu-img snapshot` has no -f: the format goes in --image-opts (commas doubled).
    const opts = `driver=${ref.format},file.filename=${ref.path.replaceAll(',', ',,')}`;
    await this.run(['snapshot', '-q', '--image-opts', op, name, opts], ref.path);
  }

  /** `qemu-img measure --output=json` of an image (chain checked) converted to `targetFormat`. */
  async measure(
    src: ImageRef,
    targetFormat: ImageFormat,
    options?: Record<string, string>,
  ): Promise<MeasureResult> {
    const chain = await this.infoChain(src);
    const argv = [
      'measure',
      '--output=json',
      '-O',
      targetFormat,
      ...optionString(options),
      chainSpec(chain),
    ];
    return parseMeasureJson((await this.run(argv, src.path)).stdout, src.path);
  }

  /** Free bytes in `dir` on the node (`df`). */
  async freeBytes(dir: string): Promise<number> {
    const r = await this.node.run(['df', '-B1', '--output=avail', dir], {
      timeoutMs: 30_000,
      reject: false,
    });
    const n = Number(r.stdout.trim().split('\n').pop());
    if (r.exitCode !== 0 || !Number.isFinite(n)) {
      throw new StorageError(dir, `cannot read free space: ${firstLines(r.stderr)}`);
    }
    return n;
  }
}
