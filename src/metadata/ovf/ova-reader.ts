/**
 * The OVA reader: an OVF package in one archive (plain tar as the OVF spec says, or the tar.gz,
 * tar.xz and zip files found in the wild).
 *
 * It reads only what inspection needs. The OVF and the manifests are kept in memory; every
 * other member streams past once and is hashed for the manifests on the way. A disk is never
 * extracted: the model says where it is in the archive (a plain tar's byte offset, or a
 * compressed archive's member name). Only members that must be files of their own are
 * extracted: ISO images, and the disks of a snapshot chain (qemu follows a chain by file name),
 * into a private directory under `--tmp-dir` (ova-extraction.ts: free space checked first,
 * removed by the run's cleanup stack).
 *
 * Every manifest (`.mf`) in the archive is verified, not only the one named after the OVF:
 * exports with one manifest per file exist. A file the OVF and manifest name `disk1.vmdk` that
 * the archive holds only as VMware snapshot members `disk1.vmdk.000000000` ... is read from the
 * highest numbered one, as virt-v2v does (RHBZ#1570407), and the notes say so.
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as posix from 'node:path/posix';
import { MetadataError, UsageError } from '../../errors.js';
import { throwIfAborted } from '../../run/run-scope.js';
import type { SourceGuest } from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptionSpec, ReaderOptions } from '../reader.js';
import { validateGuest } from '../validate.js';
import {
  MAX_MANIFEST_BYTES,
  type ManifestAlgorithm,
  type ManifestEntry,
  MultiHash,
  parseManifest,
  verifyEntry,
} from './manifest.js';
import {
  type ArchiveEntry,
  type ArchiveKind,
  detectArchiveKind,
  walkArchive,
} from './ova-archive.js';
import { DEFAULT_OVA_TMP_DIR, Extraction } from './ova-extraction.js';
import {
  fileRoles,
  type OvfDescriptor,
  type OvfFileRole,
  type OvfLocation,
  ovfToGuest,
  parseOvfDescriptor,
} from './ovf-parse.js';

/** Largest OVF descriptor read into memory. */
const MAX_OVF_BYTES = 64 * 1024 * 1024;

/** A VMware snapshot member's suffix: `disk1.vmdk.000000002`. */
const SNAPSHOT_SUFFIX = /\.([0-9]+)$/;

interface Member {
  name: string;
  size: number;
  offset?: number | undefined;
  /** Where it was extracted, when it was. */
  extracted?: string | undefined;
  digests: Map<ManifestAlgorithm, string>;
}

interface Manifest {
  member: string;
  /** Keyed by member name (the manifest's names joined to its directory). */
  entries: Map<string, ManifestEntry>;
}

/** What a later pass must do with a member. */
interface Need {
  algorithms: Set<ManifestAlgorithm>;
  extract: boolean;
}

function isOvf(name: string): boolean {
  return /\.ovf$/i.test(name);
}
function isManifest(name: string): boolean {
  return /\.mf$/i.test(name);
}
/** Roles whose files must exist on their own (qemu opens a chain's parents by name). */
function mustBeFile(role: OvfFileRole | undefined): boolean {
  return role === 'chain' || role === 'cdrom';
}

function parseMemberManifest(text: string, archive: string, member: string): Manifest {
  const dir = posix.dirname(member);
  const entries = new Map<string, ManifestEntry>();
  for (const e of parseManifest(text, `${archive}:${member}`)) {
    entries.set(dir === '.' ? e.name : `${dir}/${e.name}`, e);
  }
  return { member, entries };
}

/** The member name an OVF `href` stands for (the OVF's directory joined). */
function memberOf(ovfMember: string, href: string): string {
  const dir = posix.dirname(ovfMember);
  return dir === '.' ? href : `${dir}/${href}`;
}

/** The roles of the OVF's files, keyed by member name. */
function memberRoles(desc: OvfDescriptor, ovfMember: string): Map<string, OvfFileRole> {
  const roles = new Map<string, OvfFileRole>();
  for (const [href, role] of fileRoles(desc)) roles.set(memberOf(ovfMember, href), role);
  return roles;
}

/** Everything the passes over the archive learnt. */
class Scan {
  readonly members = new Map<string, Member>();
  readonly texts = new Map<string, string>();
  /** Every manifest, in archive order, parsed as it streamed past. */
  readonly manifests: Manifest[] = [];
  /** Roles by member, known in the first pass once the OVF streamed past (the spec puts it first). */
  private earlyRoles: Map<string, OvfFileRole> | undefined;

  constructor(
    readonly archive: string,
    readonly kind: ArchiveKind,
    readonly extraction: Extraction,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** The digest algorithms the manifests seen so far want for `name`. */
  private wanted(name: string): Set<ManifestAlgorithm> {
    const base = name.replace(SNAPSHOT_SUFFIX, '');
    const algorithms = new Set<ManifestAlgorithm>();
    for (const m of this.manifests) {
      for (const key of [name, base]) {
        const e = m.entries.get(key);
        if (e) algorithms.add(e.algorithm);
      }
    }
    return algorithms;
  }

  private earlyRole(name: string): OvfFileRole | undefined {
    return this.earlyRoles?.get(name) ?? this.earlyRoles?.get(name.replace(SNAPSHOT_SUFFIX, ''));
  }

  /**
   * Reads one member's data once: hashes it with `algorithms`, keeps it when it is a text (OVF,
   * manifest), writes it when `extract`.
   */
  private async consume(
    entry: ArchiveEntry,
    algorithms: Iterable<ManifestAlgorithm>,
    keepText: boolean,
    extract: boolean,
  ): Promise<{ digests: Map<ManifestAlgorithm, string>; text?: Buffer; file?: string }> {
    const label = `${this.archive}:${entry.name}`;
    const hash = new MultiHash(algorithms);
    const out = extract ? await this.extraction.create(entry.name, entry.size) : undefined;
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of entry.data) {
        throwIfAborted(this.signal);
        bytes += chunk.length;
        hash.update(chunk);
        if (keepText) chunks.push(chunk);
        if (out) await out.handle.write(chunk);
      }
    } finally {
      await out?.handle.close();
    }
    if (bytes !== entry.size) {
      throw new MetadataError(label, `member has ${bytes} bytes but its header says ${entry.size}`);
    }
    return {
      digests: hash.digests(),
      ...(keepText ? { text: Buffer.concat(chunks) } : {}),
      ...(out ? { file: out.file } : {}),
    };
  }

  /** First pass: every member. */
  async onEntry(entry: ArchiveEntry): Promise<void> {
    throwIfAborted(this.signal);
    const keepText = isOvf(entry.name) || isManifest(entry.name);
    const limit = isManifest(entry.name) ? MAX_MANIFEST_BYTES : MAX_OVF_BYTES;
    if (keepText && entry.size > limit) {
      throw new MetadataError(
        `${this.archive}:${entry.name}`,
        `${entry.size} bytes: larger than ${limit} bytes, refused`,
      );
    }
    // A plain tar's members are read in place later; a compressed one's only now.
    const extract = this.kind !== 'tar' && mustBeFile(this.earlyRole(entry.name));
    const r = await this.consume(entry, this.wanted(entry.name), keepText, extract);
    this.members.set(entry.name, {
      name: entry.name,
      size: entry.size,
      offset: entry.offset,
      extracted: r.file,
      digests: r.digests,
    });
    if (r.text === undefined) return;
    const text = r.text.toString('utf8').replace(/^\uFEFF/, '');
    this.texts.set(entry.name, text);
    if (isManifest(entry.name)) {
      this.manifests.push(parseMemberManifest(text, this.archive, entry.name));
    } else if (this.earlyRoles === undefined) {
      try {
        this.earlyRoles = memberRoles(
          parseOvfDescriptor(text, `${this.archive}:${entry.name}`),
          entry.name,
        );
      } catch {
        // Reported after the pass, where the descriptor is parsed for good.
      }
    }
  }

  /**
   * `name`, or, when the archive lacks it, its highest numbered VMware snapshot member
   * (`name.000000002`); undefined when neither is there.
   */
  resolve(name: string): { member: Member; older: string[] } | undefined {
    const exact = this.members.get(name);
    if (exact) return { member: exact, older: [] };
    const snapshots = [...this.members.values()]
      .filter(
        (m) => m.name.startsWith(`${name}.`) && /^[0-9]+$/.test(m.name.slice(name.length + 1)),
      )
      .sort((a, b) => {
        const x = BigInt(a.name.slice(name.length + 1));
        const y = BigInt(b.name.slice(name.length + 1));
        return x < y ? -1 : x > y ? 1 : 0;
      });
    const top = snapshots.pop();
    return top ? { member: top, older: snapshots.map((m) => m.name) } : undefined;
  }

  /**
   * Completes what the first pass could not do: digests of members that came before their
   * manifest, and members to extract. A plain tar is read in place at each member's offset; a
   * compressed archive is streamed once more, for the members concerned only.
   */
  async complete(needs: Map<string, Need>): Promise<void> {
    const todo = [...needs].filter(([name, need]) => {
      const m = this.members.get(name) as Member;
      need.extract &&= m.extracted === undefined;
      for (const a of need.algorithms) if (m.digests.has(a)) need.algorithms.delete(a);
      return need.extract || need.algorithms.size > 0;
    });
    if (todo.length === 0) return;
    if (this.kind === 'tar') {
      for (const [name, need] of todo) {
        const m = this.members.get(name) as Member;
        if (need.extract) await this.extractRange(m);
        if (need.algorithms.size > 0) await this.digestInPlace(m, need.algorithms);
      }
      return;
    }
    const wanted = new Map(todo);
    await walkArchive(
      this.archive,
      this.kind,
      async (entry) => {
        const need = wanted.get(entry.name);
        const m = this.members.get(entry.name);
        if (!need || !m) return;
        const r = await this.consume(entry, need.algorithms, false, need.extract);
        for (const [a, d] of r.digests) m.digests.set(a, d);
        if (r.file) m.extracted = r.file;
      },
      this.signal,
    );
  }

  /** The byte range of a plain-tar member (empty for an empty member). */
  private range(m: Member): AsyncIterable<Buffer> {
    if (m.size === 0 || m.offset === undefined) return (async function* () {})();
    return createReadStream(this.archive, { start: m.offset, end: m.offset + m.size - 1 });
  }

  /** Copies a plain-tar member's bytes out to the extraction directory. */
  private async extractRange(m: Member): Promise<void> {
    const { file, handle } = await this.extraction.create(m.name, m.size);
    try {
      for await (const chunk of this.range(m)) {
        throwIfAborted(this.signal);
        await handle.write(chunk);
      }
    } finally {
      await handle.close();
    }
    m.extracted = file;
  }

  /** Hashes a plain-tar member in place (its manifest came after it). */
  private async digestInPlace(m: Member, algorithms: Set<ManifestAlgorithm>): Promise<void> {
    const hash = new MultiHash(algorithms);
    for await (const chunk of this.range(m)) {
      throwIfAborted(this.signal);
      hash.update(chunk);
    }
    for (const [a, d] of hash.digests()) m.digests.set(a, d);
  }
}

function pickDescriptor(scan: Scan): string {
  const ovfs = [...scan.members.keys()].filter(isOvf);
  if (ovfs.length === 0) {
    throw new MetadataError(scan.archive, 'no .ovf descriptor in the archive: not an OVA');
  }
  if (ovfs.length > 1) {
    throw new MetadataError(
      scan.archive,
      `${ovfs.length} .ovf descriptors in the archive (${ovfs.join(', ')}): expected one`,
    );
  }
  return ovfs[0] as string;
}

/** Adds what `name` (resolved) needs to `needs`. */
function need(needs: Map<string, Need>, name: string): Need {
  let n = needs.get(name);
  if (!n) {
    n = { algorithms: new Set(), extract: false };
    needs.set(name, n);
  }
  return n;
}

/**
 * Checks every manifest's every entry against the member it names (a missing one is an error
 * naming the manifest and its line), and notes the members no manifest lists.
 */
function verifyManifests(scan: Scan, notes: string[]): void {
  if (scan.manifests.length === 0) {
    notes.push('no manifest (.mf) in the archive: contents not verified');
    return;
  }
  const listed = new Set<string>();
  for (const manifest of scan.manifests) {
    listed.add(manifest.member);
    const label = `${scan.archive}:${manifest.member}`;
    for (const [name, entry] of manifest.entries) {
      const r = scan.resolve(name);
      if (r) listed.add(r.member.name);
      verifyEntry(entry, r?.member.digests.get(entry.algorithm), label, 'in the archive');
    }
  }
  const which = scan.manifests.length === 1 ? 'the manifest' : 'any manifest';
  for (const name of scan.members.keys()) {
    if (listed.has(name)) continue;
    if (/\.cert$/i.test(name)) notes.push(`certificate "${name}" not verified`);
    else notes.push(`member "${name}" is not listed in ${which}: not verified`);
  }
}

/** Reads an OVA archive (`kind: 'ova'`). Local files only, for now. */
export class OvaReader implements MetadataReader {
  readonly kind = 'ova' as const;
  readonly optionSpecs: readonly ReaderOptionSpec[] = [
    {
      flag: 'tmp-dir',
      key: 'tmpDir',
      type: 'string',
      describe: `where members that must be files (a snapshot chain's disks, ISOs) are extracted; disks never are (default ${DEFAULT_OVA_TMP_DIR})`,
    },
  ];

  /** One OVA file, any name (the kind is told by its bytes). */
  check(source: string[], options: ReaderOptions): void {
    if (source.length !== 1 || !source[0]) {
      throw new UsageError(`the ova reader takes one OVA file, got ${source.length} sources`);
    }
    if (options.tmpDir !== undefined && options.tmpDir.trim() === '') {
      throw new UsageError('--tmp-dir: give a directory');
    }
  }

  async read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, options);
    const given = source[0] as string;
    if (!ctx.node.isLocal) {
      throw new UsageError(
        `OVA ${given} is on ${ctx.node.name}: reading an OVA over SSH is not supported yet; copy it to this machine`,
      );
    }
    const archive = path.resolve(given);
    const kind = await this.kindOf(archive);
    ctx.log.debug(`reading ${archive} as a ${kind} OVA`);
    const extraction = new Extraction(
      path.resolve(options.tmpDir ?? DEFAULT_OVA_TMP_DIR),
      archive,
      ctx.cleanup,
    );
    let ok = false;
    try {
      const guest = await this.readArchive(archive, kind, extraction, ctx);
      ok = true;
      return guest;
    } finally {
      await extraction.finish(ok);
    }
  }

  private async readArchive(
    archive: string,
    kind: ArchiveKind,
    extraction: Extraction,
    ctx: ReaderContext,
  ): Promise<SourceGuest> {
    const scan = new Scan(archive, kind, extraction, ctx.signal);
    await walkArchive(archive, kind, (e) => scan.onEntry(e), ctx.signal);

    const ovfMember = pickDescriptor(scan);
    const label = `${archive}:${ovfMember}`;
    // Parsed before the manifests are checked, reported after: a changed OVF is a digest
    // mismatch first.
    let desc: OvfDescriptor | undefined;
    let descError: unknown;
    try {
      desc = parseOvfDescriptor(scan.texts.get(ovfMember) ?? '', label);
    } catch (e) {
      descError = e;
    }

    const needs = new Map<string, Need>();
    for (const manifest of scan.manifests) {
      for (const [name, entry] of manifest.entries) {
        const r = scan.resolve(name);
        if (r) need(needs, r.member.name).algorithms.add(entry.algorithm);
      }
    }
    const roles = desc ? memberRoles(desc, ovfMember) : new Map<string, OvfFileRole>();
    for (const [name, role] of roles) {
      const r = scan.resolve(name);
      if (r && mustBeFile(role)) need(needs, r.member.name).extract = true;
    }
    if (scan.manifests.length > 0) {
      ctx.log.debug(
        `verifying ${archive} against ${scan.manifests.map((m) => m.member).join(', ')}`,
      );
    }
    await scan.complete(needs);

    const notes: string[] = [];
    for (const name of roles.keys()) {
      const r = scan.resolve(name);
      if (r && r.member.name !== name) {
        const older = r.older.length > 0 ? ` (older: ${r.older.join(', ')})` : '';
        notes.push(
          `"${name}" is not in the archive: its highest numbered snapshot member "${r.member.name}" is used${older}`,
        );
      }
    }
    verifyManifests(scan, notes);
    if (descError !== undefined || !desc) throw descError;

    for (const f of desc.files.values()) {
      const m = scan.resolve(memberOf(ovfMember, f.href))?.member;
      if (m && f.size !== undefined && f.size !== m.size) {
        notes.push(`"${f.href}" is ${m.size} bytes but the OVF says ${f.size}`);
      }
    }
    const guest = ovfToGuest(desc, {
      origin: { kind: 'ova', source: archive },
      locate: (href): OvfLocation | undefined => {
        const m = scan.resolve(memberOf(ovfMember, href))?.member;
        if (!m) return undefined;
        return {
          path: m.extracted ?? archive,
          inArchive: { archive, member: m.name, offset: m.offset, size: m.size },
        };
      },
      missing: (href) => `not in the archive (no member "${memberOf(ovfMember, href)}")`,
    });
    guest.notes.push(...notes);
    return validateGuest(guest, label);
  }

  private async kindOf(archive: string): Promise<ArchiveKind> {
    const st = await fs.stat(archive).catch(() => undefined);
    if (!st) throw new MetadataError(archive, 'no such file');
    if (!st.isFile()) throw new MetadataError(archive, 'not a regular file');
    if (st.size === 0) throw new MetadataError(archive, 'empty file, expected an OVA archive');
    const head = Buffer.alloc(512);
    const fh = await fs.open(archive, 'r');
    let n: number;
    try {
      ({ bytesRead: n } = await fh.read(head, 0, 512, 0));
    } finally {
      await fh.close();
    }
    const kind = detectArchiveKind(head.subarray(0, n));
    if (!kind) {
      throw new MetadataError(
        archive,
        `not an OVA: not a tar, tar.gz, tar.xz or zip archive (starts with ${head.subarray(0, Math.min(n, 8)).toString('hex')})`,
      );
    }
    return kind;
  }
}
