/**
 * Reading OVA archives as they are found in the wild: plain tar (the OVF spec's form), tar.gz,
 * tar.xz and zip. The kind is told by magic bytes, never by the extension. Members are streamed
 * one by one; names that are absolute, have `..` segments, and links of any kind are refused
 * with an error naming the archive and the member (never skipped, never followed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import * as yauzlModule from 'yauzl';
import { CommandNotFoundError, MetadataError, V2vError } from '../../errors.js';
import { abortReason } from '../../run/run-scope.js';
import { checkRelativeName } from './manifest.js';

export type ArchiveKind = 'tar' | 'tar.gz' | 'tar.xz' | 'zip';

/** One regular-file member, its data to be read once. */
export interface ArchiveEntry {
  /** Normalized: no `./`, no empty segments. */
  name: string;
  size: number;
  /** Byte offset of the member's data in the archive file: plain tar only. */
  offset?: number | undefined;
  data: AsyncIterable<Buffer>;
}

function isTarHeader(h: Uint8Array): boolean {
  if (h.length < 512) return false;
  if (Buffer.from(h.subarray(257, 262)).toString('latin1') === 'ustar') return true;
  // Old (v7) tar: no magic, but the header checksum holds.
  const field = Buffer.from(h.subarray(148, 156))
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return sum === Number.parseInt(field, 8);
}

/** The archive kind from its first bytes (give at least 512), or undefined when unknown. */
export function detectArchiveKind(head: Uint8Array): ArchiveKind | undefined {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'tar.gz';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'tar.xz';
  if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06)) return 'zip';
  if (isTarHeader(head)) return 'tar';
  return undefined;
}

/**
 * Checks a member's name: returns it normalized, or throws a MetadataError naming the archive
 * and the member when it is absolute, has `..` segments, a backslash or a NUL. The top
 * directory itself (`./`, as `tar -C dir .` writes it) gives the empty name.
 */
export function checkMemberName(archive: string, raw: string): string {
  if (/^(\.\/)*\.?\/?$/.test(raw) && raw !== '' && !raw.startsWith('/')) return '';
  const checked = checkRelativeName(raw.startsWith('/') ? raw : raw.replace(/\/+$/, ''));
  if ('refused' in checked) {
    throw new MetadataError(
      archive,
      `member ${JSON.stringify(raw)} refused: ${checked.refused} in an archive is not accepted`,
      { hint: 'the archive is broken or hostile; get the OVA again from its source' },
    );
  }
  return checked.name;
}

function refuseLink(
  archive: string,
  name: string,
  kind: string,
  target: string | undefined,
): never {
  throw new MetadataError(
    archive,
    `member ${JSON.stringify(name)} is a ${kind}${target ? ` to ${JSON.stringify(target)}` : ''}: links in an OVA are refused`,
    { hint: 'an OVA holds only regular files; get the OVA again from its source' },
  );
}

/** Reads `data` to its end (what a consumer left unread). */
async function drain(data: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of data) {
    // discard
  }
}

/** Wraps a library's error (corrupt data) as a MetadataError naming the archive. */
function corrupt(archive: string, kind: ArchiveKind, e: unknown): V2vError {
  if (e instanceof V2vError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new MetadataError(archive, `corrupt or truncated ${kind} archive: ${msg}`, {
    cause: e,
    hint: 'the file is damaged or incomplete; copy or download it again',
  });
}

interface XzProcess {
  child: ChildProcess;
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
}

function startXz(archive: string): XzProcess {
  const child = spawn('xz', ['-dc', '--', archive], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr?.on('data', (c: Buffer) => stderr.push(c.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    },
  );
  return { child, stderr, exit };
}

async function xzFailure(archive: string, xz: XzProcess): Promise<V2vError | undefined> {
  const r = await xz.exit;
  const argv = ['xz', '-dc', '--', archive];
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    return new CommandNotFoundError(
      {
        argv,
        node: 'local',
        exitCode: undefined,
        signal: undefined,
        stdout: '',
        stderr: 'xz: command not found',
        durationMs: 0,
        timedOut: false,
        aborted: false,
      },
      { hint: 'install xz (xz-utils) to read .tar.xz OVAs' },
    );
  }
  if (r.error) return new MetadataError(archive, `xz could not run: ${r.error.message}`);
  if (r.code !== 0) {
    const why = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
    return new MetadataError(archive, `xz -dc ${why}: ${xz.stderr.join('').trim()}`, {
      hint: 'the file is damaged or incomplete; copy or download it again',
    });
  }
  return undefined;
}

/**
 * Destroys `streams` with the abort reason when `signal` aborts, so a consumer blocked on them
 * throws it; returns the function that stops listening.
 */
function destroyOnAbort(signal: AbortSignal | undefined, streams: () => Readable[]): () => void {
  if (!signal) return () => {};
  const onAbort = () => {
    for (const s of streams()) s.destroy(abortReason(signal));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

async function walkTar(
  archive: string,
  kind: ArchiveKind,
  onEntry: (entry: ArchiveEntry) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const extract = tar.extract();
  let source: Readable;
  let file: Readable | undefined;
  let xz: XzProcess | undefined;
  if (kind === 'tar.xz') {
    xz = startXz(archive);
    source = xz.child.stdout as Readable;
  } else {
    file = createReadStream(archive);
    if (kind === 'tar.gz') {
      const gunzip = createGunzip();
      file.on('error', (e) => gunzip.destroy(e));
      source = file.pipe(gunzip);
    } else {
      source = file;
    }
  }
  // The reason a stream upstream failed (gunzip: "unexpected end of file"); what reaches the
  // tar extractor is only that its input was destroyed.
  let upstream: Error | undefined;
  source.on('error', (e) => {
    upstream ??= e;
    extract.destroy(e);
  });
  source.pipe(extract as unknown as NodeJS.WritableStream);
  const seen = new Set<string>();
  let ok = false;
  let current: Readable | undefined;
  const stopListening = destroyOnAbort(signal, () => [
    ...(current ? [current] : []),
    extract as unknown as Readable,
    source,
  ]);
  try {
    if (signal?.aborted) throw abortReason(signal);
    for await (const entry of extract) {
      current = entry as unknown as Readable;
      const h = entry.header;
      const name = checkMemberName(archive, h.name);
      if (h.type === 'symlink') refuseLink(archive, h.name, 'symbolic link', h.linkname);
      if (h.type === 'link') refuseLink(archive, h.name, 'hard link', h.linkname);
      const data = entry as unknown as AsyncIterable<Buffer>;
      if (h.type === 'directory' || name === '') {
        await drain(data);
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        throw new MetadataError(
          archive,
          `member ${JSON.stringify(h.name)} is a ${h.type ?? 'special entry'}, not a regular file: refused`,
        );
      }
      if (seen.has(name)) {
        throw new MetadataError(archive, `member ${JSON.stringify(name)} appears twice: refused`);
      }
      seen.add(name);
      await onEntry({
        name,
        size: h.size,
        offset: kind === 'tar' ? entry.offset + 512 : undefined,
        data,
      });
      await drain(data);
    }
    if (xz) {
      const failed = await xzFailure(archive, xz);
      if (failed) throw failed;
    }
    if (seen.size === 0) throw new MetadataError(archive, `empty ${kind} archive: no members`);
    ok = true;
  } catch (e) {
    // Interrupted: whatever broke (a destroyed stream, xz killed by the terminal's SIGINT) broke
    // because of it.
    if (signal?.aborted) throw abortReason(signal);
    if (e instanceof V2vError) throw e;
    if (xz) {
      // A corrupt xz stream shows up as a truncated tar: xz's own message says more.
      const failed = await withTimeout(xzFailure(archive, xz), 2000);
      if (failed) throw failed;
    }
    throw corrupt(archive, kind, upstream ?? e);
  } finally {
    stopListening();
    source.destroy();
    file?.destroy();
    if (!ok && xz && xz.child.exitCode === null && xz.child.signalCode === null) {
      xz.child.kill('SIGKILL');
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The parts of yauzl 3 used here (its @types package describes version 2). */
interface ZipEntry {
  fileName: Buffer | string;
  generalPurposeBitFlag: number;
  extraFields: { id: number; data: Buffer }[];
  externalFileAttributes: number;
  versionMadeBy: number;
  uncompressedSize: number;
  isEncrypted(): boolean;
}
interface ZipFile {
  eachEntry(): AsyncIterable<ZipEntry>;
  openReadStreamPromise(entry: ZipEntry): Promise<Readable>;
  close(): void;
}
interface Yauzl {
  openPromise(path: string, options: Record<string, boolean>): Promise<ZipFile>;
  getFileNameLowLevel(
    flags: number,
    name: Buffer,
    extraFields: { id: number; data: Buffer }[],
    strictFileNames: boolean,
  ): string;
}
const yauzl = yauzlModule as unknown as Yauzl;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

async function walkZip(
  archive: string,
  onEntry: (entry: ArchiveEntry) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(archive, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (e) {
    throw corrupt(archive, 'zip', e);
  }
  const seen = new Set<string>();
  let current: Readable | undefined;
  const stopListening = destroyOnAbort(signal, () => (current ? [current] : []));
  try {
    for await (const entry of zip.eachEntry()) {
      if (signal?.aborted) throw abortReason(signal);
      const raw =
        typeof entry.fileName === 'string'
          ? entry.fileName
          : yauzl.getFileNameLowLevel(
              entry.generalPurposeBitFlag,
              entry.fileName,
              entry.extraFields,
              true,
            );
      const name = checkMemberName(archive, raw);
      const madeByUnix = entry.versionMadeBy >> 8 === 3;
      const mode = madeByUnix ? (entry.externalFileAttributes >>> 16) & S_IFMT : 0;
      if (mode === S_IFLNK) refuseLink(archive, raw, 'symbolic link', undefined);
      if (raw.endsWith('/') || mode === S_IFDIR || name === '') continue;
      if (mode !== 0 && mode !== S_IFREG) {
        throw new MetadataError(
          archive,
          `member ${JSON.stringify(raw)} is not a regular file: refused`,
        );
      }
      if (entry.isEncrypted()) {
        throw new MetadataError(
          archive,
          `member ${JSON.stringify(raw)} is encrypted: not supported`,
        );
      }
      if (seen.has(name)) {
        throw new MetadataError(archive, `member ${JSON.stringify(name)} appears twice: refused`);
      }
      seen.add(name);
      const stream = await zip.openReadStreamPromise(entry);
      current = stream;
      try {
        await onEntry({ name, size: entry.uncompressedSize, data: stream });
        await drain(stream);
      } finally {
        stream.destroy();
      }
    }
    if (seen.size === 0) throw new MetadataError(archive, 'empty zip archive: no files');
  } catch (e) {
    throw signal?.aborted ? abortReason(signal) : corrupt(archive, 'zip', e);
  } finally {
    stopListening();
    zip.close();
  }
}

/**
 * Streams the regular-file members of `archive`, in archive order. `onEntry` may read the
 * entry's data (whatever it leaves is skipped). Directories are checked and skipped.
 * @throws MetadataError naming the archive (and member) for unsafe names, links, special files,
 *   duplicate members, and corrupt or truncated data; CommandNotFoundError when `xz` is missing;
 *   the abort reason of `signal` once it aborts (the streams are destroyed, xz is killed).
 */
export async function walkArchive(
  archive: string,
  kind: ArchiveKind,
  onEntry: (entry: ArchiveEntry) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  if (kind === 'zip') return walkZip(archive, onEntry, signal);
  return walkTar(archive, kind, onEntry, signal);
}
