/**
 * The OVA reader: an OVF package in one archive (plain tar as the OVF spec says, or the tar.gz,
 * tar.xz and zip files found in the wild). A plain tar is read in place: disks stay in the
 * archive and are described by their byte offset. A compressed archive is extracted into the
 * run's private temporary directory. The manifest is checked while the members stream past.
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as posix from 'node:path/posix';
import { MetadataError, UsageError } from '../../errors.js';
import type { SourceGuest } from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptions } from '../reader.js';
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
import { fileRoles, type OvfLocation, ovfToGuest, parseOvfDescriptor } from './ovf-parse.js';

/** Largest OVF descriptor read into memory. */
const MAX_OVF_BYTES = 64 * 1024 * 1024;

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

function isOvf(name: string): boolean {
  return /\.ovf$/i.test(name);
}
function isManifest(name: string): boolean {
  return /\.mf$/i.test(name);
}

function parseMemberManifest(text: string, archive: string, member: string): Manifest {
  const dir = posix.dirname(member);
  const entries = new Map<string, ManifestEntry>();
  for (const e of parseManifest(text, `${archive}:${member}`)) {
    entries.set(dir === '.' ? e.name : `${dir}/${e.name}`, e);
  }
  return { member, entries };
}

/** Everything one pass over the archive learnt. */
class Scan {
  readonly members = new Map<string, Member>();
  readonly texts = new Map<string, string>();
  /** The first manifest seen: members after it are hashed while they stream. */
  streamingManifest: Manifest | undefined;
  private extractDir: string | undefined;

  constructor(
    readonly archive: string,
    readonly kind: ArchiveKind,
    private readonly tmpDir: string,
  ) {}

  /** A private directory inside the run's temporary directory, made on first use. */
  async dir(): Promise<string> {
    this.extractDir ??= await fs.mkdtemp(path.join(this.tmpDir, 'ova-'));
    return this.extractDir;
  }

  /** Opens a new file for `member` under the private directory (never an existing one). */
  async create(member: string): Promise<{ file: string; handle: fs.FileHandle }> {
    const root = await this.dir();
    const file = path.join(root, ...member.split('/'));
    if (!file.startsWith(root + path.sep)) {
      throw new MetadataError(this.archive, `member "${member}" would land outside ${root}`);
    }
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    return { file, handle: await fs.open(file, 'wx', 0o600) };
  }

  async onEntry(entry: ArchiveEntry): Promise<void> {
    const label = `${this.archive}:${entry.name}`;
    const keepText = isOvf(entry.name) || isManifest(entry.name);
    const limit = isManifest(entry.name) ? MAX_MANIFEST_BYTES : MAX_OVF_BYTES;
    if (keepText && entry.size > limit) {
      throw new MetadataError(label, `${entry.size} bytes: larger than ${limit} bytes, refused`);
    }
    const listed = this.streamingManifest?.entries.get(entry.name);
    const hash = new MultiHash(listed ? [listed.algorithm] : []);
    const out = this.kind === 'tar' ? undefined : await this.create(entry.name);
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of entry.data) {
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
    this.members.set(entry.name, {
      name: entry.name,
      size: entry.size,
      offset: entry.offset,
      extracted: out?.file,
      digests: hash.digests(),
    });
    if (keepText) {
      const text = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/^\uFEFF/, '');
      this.texts.set(entry.name, text);
      if (isManifest(entry.name) && !this.streamingManifest) {
        this.streamingManifest = parseMemberManifest(text, this.archive, entry.name);
      }
    }
  }

  /** Copies a plain-tar member's bytes out to the private directory. */
  async extractRange(m: Member): Promise<string> {
    const { file, handle } = await this.create(m.name);
    try {
      if (m.size > 0 && m.offset !== undefined) {
        const input = createReadStream(this.archive, {
          start: m.offset,
          end: m.offset + m.size - 1,
        });
        for await (const chunk of input) await handle.write(chunk as Buffer);
      }
    } finally {
      await handle.close();
    }
    m.extracted = file;
    return file;
  }

  /** Digests a member after the pass (the manifest came after it). */
  async digest(m: Member, algorithm: ManifestAlgorithm): Promise<string> {
    const known = m.digests.get(algorithm);
    if (known !== undefined) return known;
    const hash = new MultiHash([algorithm]);
    const input =
      m.extracted !== undefined
        ? createReadStream(m.extracted)
        : m.size === 0
          ? []
          : createReadStream(this.archive, {
              start: m.offset ?? 0,
              end: (m.offset ?? 0) + m.size - 1,
            });
    for await (const chunk of input) hash.update(chunk as Buffer);
    const d = hash.digests().get(algorithm) as string;
    m.digests.set(algorithm, d);
    return d;
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

function pickManifest(scan: Scan, ovfMember: string): Manifest | undefined {
  const mfs = [...scan.members.keys()].filter(isManifest);
  const named = ovfMember.replace(/\.ovf$/i, '.mf');
  const chosen = mfs.includes(named) ? named : mfs.length === 1 ? mfs[0] : undefined;
  if (chosen === undefined) {
    if (mfs.length > 1) {
      throw new MetadataError(
        scan.archive,
        `${mfs.length} manifests (${mfs.join(', ')}) and none is named after ${ovfMember}`,
      );
    }
    return undefined;
  }
  if (scan.streamingManifest?.member === chosen) return scan.streamingManifest;
  return parseMemberManifest(scan.texts.get(chosen) ?? '', scan.archive, chosen);
}

async function verifyManifest(
  scan: Scan,
  manifest: Manifest | undefined,
  notes: string[],
): Promise<void> {
  if (!manifest) {
    notes.push('no manifest (.mf) in the archive: contents not verified');
    return;
  }
  const label = `${scan.archive}:${manifest.member}`;
  for (const [member, entry] of manifest.entries) {
    const m = scan.members.get(member);
    verifyEntry(
      entry,
      m === undefined ? undefined : await scan.digest(m, entry.algorithm),
      label,
      'in the archive',
    );
  }
  for (const name of scan.members.keys()) {
    if (name === manifest.member || manifest.entries.has(name)) continue;
    if (/\.cert$/i.test(name)) notes.push(`certificate "${name}" not verified`);
    else notes.push(`member "${name}" is not listed in the manifest: not verified`);
  }
}

/** Reads an OVA archive (`kind: 'ova'`). Local files only, for now. */
export class OvaReader implements MetadataReader {
  readonly kind = 'ova' as const;

  /** One OVA file, any name (the kind is told by its bytes). */
  check(source: string[], _options: ReaderOptions): void {
    if (source.length !== 1 || !source[0]) {
      throw new UsageError(`the ova reader takes one OVA file, got ${source.length} sources`);
    }
  }

  async read(source: string[], _options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, _options);
    const given = source[0] as string;
    if (!ctx.node.isLocal) {
      throw new UsageError(
        `OVA ${given} is on ${ctx.node.name}: reading an OVA over SSH is not supported yet; copy it to this machine`,
      );
    }
    const archive = path.resolve(given);
    const kind = await this.kindOf(archive);
    ctx.log.debug(`reading ${archive} as a ${kind} OVA`);
    const scan = new Scan(archive, kind, ctx.tmpDir);
    await walkArchive(archive, kind, (e) => scan.onEntry(e));

    const ovfMember = pickDescriptor(scan);
    const label = `${archive}:${ovfMember}`;
    const notes: string[] = [];
    await verifyManifest(scan, pickManifest(scan, ovfMember), notes);

    const desc = parseOvfDescriptor(scan.texts.get(ovfMember) ?? '', label);
    const dir = posix.dirname(ovfMember);
    const memberOf = (href: string) => (dir === '.' ? href : `${dir}/${href}`);
    for (const [href, role] of fileRoles(desc)) {
      const m = scan.members.get(memberOf(href));
      // A snapshot chain's files and ISO images are needed as files of their own.
      if (m && m.extracted === undefined && role !== 'disk') await scan.extractRange(m);
    }
    for (const f of desc.files.values()) {
      const m = scan.members.get(memberOf(f.href));
      if (m && f.size !== undefined && f.size !== m.size) {
        notes.push(`"${f.href}" is ${m.size} bytes but the OVF says ${f.size}`);
      }
    }
    const guest = ovfToGuest(desc, {
      origin: { kind: 'ova', source: archive },
      locate: (href): OvfLocation | undefined => {
        const m = scan.members.get(memberOf(href));
        if (!m) return undefined;
        return {
          path: m.extracted ?? archive,
          inArchive: { archive, member: m.name, offset: m.offset, size: m.size },
        };
      },
      missing: (href) => `not in the archive (no member "${memberOf(href)}")`,
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
