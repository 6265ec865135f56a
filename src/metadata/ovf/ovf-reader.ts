/**
 * The OVF reader: an unpacked OVF package, a `.ovf` descriptor next to its disk files and an
 * optional `.mf` manifest. Files are read through the node (local or SSH); the manifest's
 * digests are computed on the node with `sha1sum`/`sha256sum`/`sha512sum`.
 */
import * as path from 'node:path';
import * as posix from 'node:path/posix';
import { MetadataError, UsageError } from '../../errors.js';
import type { FileStat, Node } from '../../node/node.js';
import type { SourceGuest } from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptions } from '../reader.js';
import { validateGuest } from '../validate.js';
import {
  MAX_MANIFEST_BYTES,
  type ManifestAlgorithm,
  parseManifest,
  verifyEntry,
} from './manifest.js';
import { fileRoles, type OvfDescriptor, ovfToGuest, parseOvfDescriptor } from './ovf-parse.js';

/** Largest OVF descriptor read. */
const MAX_OVF_BYTES = 64 * 1024 * 1024;

async function readText(node: Node, file: string, max: number, what: string): Promise<string> {
  const st = await node.stat(file);
  if (!st) throw new MetadataError(file, `no such file (the ${what})`);
  if (st.type === 'directory')
    throw new MetadataError(file, `is a directory, expected the ${what}`);
  if (st.type === 'file' && st.size > max) {
    throw new MetadataError(file, `${st.size} bytes: larger than ${max} bytes, refused`);
  }
  const data = await node.readFile(file);
  if (data.length > max) throw new MetadataError(file, `larger than ${max} bytes, refused`);
  return data.toString('utf8').replace(/^\uFEFF/, '');
}

/** The digest of `file` computed on the node. */
async function digestOnNode(
  node: Node,
  file: string,
  algorithm: ManifestAlgorithm,
): Promise<string> {
  const r = await node.run([`${algorithm}sum`, '--', file]);
  const m = /^\\?([0-9a-fA-F]+)\s/.exec(r.stdout);
  if (!m)
    throw new MetadataError(file, `${algorithm}sum printed no digest: ${r.stdout.slice(0, 200)}`);
  return (m[1] as string).toLowerCase();
}

/** Reads an unpacked OVF package (`kind: 'ovf'`). */
export class OvfReader implements MetadataReader {
  readonly kind = 'ovf' as const;

  /** One `.ovf` file. */
  check(source: string[], _options: ReaderOptions): void {
    if (source.length !== 1 || !source[0]) {
      throw new UsageError(`the ovf reader takes one .ovf file, got ${source.length} sources`);
    }
    if (!/\.ovf$/i.test(source[0])) {
      throw new UsageError(
        `${source[0]}: expected an .ovf descriptor (for an .ova use the ova reader)`,
      );
    }
  }

  async read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, options);
    const given = source[0] as string;
    let file = given;
    if (!posix.isAbsolute(given)) {
      if (!ctx.node.isLocal) {
        throw new UsageError(`${given}: give an absolute path for a file on ${ctx.node.name}`);
      }
      file = path.resolve(given);
    }
    const desc = parseOvfDescriptor(
      await readText(ctx.node, file, MAX_OVF_BYTES, 'OVF descriptor'),
      file,
    );
    const dir = posix.dirname(file);
    const notes: string[] = [];
    const found = await this.statReferences(ctx.node, desc, dir, notes);

    const guest = ovfToGuest(desc, {
      origin: { kind: 'ovf', source: file },
      locate: (href) => {
        const st = found.get(href);
        if (!st) return undefined;
        const p = posix.join(dir, href);
        if (st.type !== 'file') {
          throw new MetadataError(
            file,
            `"${href}" (${p}) is a ${st.type === 'symlink' ? 'symbolic link' : st.type}: only regular files next to the OVF are read`,
            { hint: 'copy the file itself next to the OVF' },
          );
        }
        return { path: p };
      },
      missing: (href) => `not found: ${posix.join(dir, href)}`,
    });
    await this.verifyManifest(ctx, desc, file, dir, notes);
    guest.notes.push(...notes);
    return validateGuest(guest, file);
  }

  private async statReferences(
    node: Node,
    desc: OvfDescriptor,
    dir: string,
    notes: string[],
  ): Promise<Map<string, FileStat>> {
    const found = new Map<string, FileStat>();
    for (const f of desc.files.values()) {
      const st = await node.stat(posix.join(dir, f.href));
      if (!st) continue;
      found.set(f.href, st);
      if (st.type === 'file' && f.size !== undefined && f.size !== st.size) {
        notes.push(`"${f.href}" is ${st.size} bytes but the OVF says ${f.size}`);
      }
    }
    return found;
  }

  private async verifyManifest(
    ctx: ReaderContext,
    desc: OvfDescriptor,
    file: string,
    dir: string,
    notes: string[],
  ): Promise<void> {
    const mf = file.replace(/\.ovf$/i, '.mf');
    const cert = file.replace(/\.ovf$/i, '.cert');
    if (await ctx.node.stat(cert)) notes.push(`certificate ${cert} not verified`);
    if (!(await ctx.node.stat(mf))) {
      notes.push('no manifest (.mf) next to the OVF: files not verified');
      return;
    }
    const entries = parseManifest(await readText(ctx.node, mf, MAX_MANIFEST_BYTES, 'manifest'), mf);
    const listed = new Set(entries.map((e) => e.name));
    for (const e of entries) {
      const p = posix.join(dir, e.name);
      const st = await ctx.node.stat(p);
      if (st?.type === 'file')
        ctx.log.info(`checking the ${e.algorithm.toUpperCase()} digest of ${p}`);
      verifyEntry(
        e,
        st?.type === 'file' ? await digestOnNode(ctx.node, p, e.algorithm) : undefined,
        mf,
        `a file next to the OVF (${p})`,
      );
    }
    for (const href of fileRoles(desc).keys()) {
      if (!listed.has(href)) notes.push(`"${href}" is not listed in the manifest: not verified`);
    }
    if (!listed.has(posix.basename(file))) {
      notes.push(`the manifest does not list ${posix.basename(file)}: descriptor not verified`);
    }
  }
}
