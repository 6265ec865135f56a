/**
 * OVF manifests (`NAME.mf`): one digest per line, as ovftool and VirtualBox write them:
 * `SHA1(disk1.vmdk)= 0123...`, `SHA256(vm.ovf)= abcd...` (and the `SHA1 (x) = hex` spacing of
 * other tools). Parsing is strict: a line that is not a digest is an error with its line number.
 */
import { createHash, type Hash } from 'node:crypto';
import { MetadataError } from '../../errors.js';

/** The digest algorithms an OVF manifest may use (DSP0243: SHA-1, SHA-256; ovftool: SHA-512). */
export type ManifestAlgorithm = 'sha1' | 'sha256' | 'sha512';

const HEX_LENGTH: Record<ManifestAlgorithm, number> = { sha1: 40, sha256: 64, sha512: 128 };

/** One line of a manifest. */
export interface ManifestEntry {
  algorithm: ManifestAlgorithm;
  /** The file name as written, relative to the manifest's directory (checked: no `..`, not absolute). */
  name: string;
  /** Lower-case hex. */
  digest: string;
  line: number;
}

const LINE = /^(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)$/i;

/** Largest manifest accepted (a manifest holds a few lines per file). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

/**
 * Checks a relative file name taken from an OVF, a manifest or an archive: not absolute (nor a
 * drive letter), no `..` segment, no backslash or NUL. Returns it normalized (`./` and empty segments dropped), or
 * a reason it is refused.
 */
export function checkRelativeName(name: string): { name: string } | { refused: string } {
  if (name === '') return { refused: 'an empty name' };
  if (name.includes('\0')) return { refused: 'a name with a NUL byte' };
  if (name.includes('\\')) return { refused: 'a name with a backslash' };
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return { refused: 'an absolute path' };
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { refused: 'a name with ".." segments' };
  if (parts.length === 0) return { refused: 'an empty name' };
  return { name: parts.join('/') };
}

/**
 * Parses the manifest `text` read from `file`.
 * @throws MetadataError naming the manifest and line for a malformed line, an unsafe name, a
 *   digest of the wrong length or a file listed twice.
 */
export function parseManifest(text: string, file: string): ManifestEntry[] {
  if (text.length > MAX_MANIFEST_BYTES) {
    throw new MetadataError(file, `manifest larger than ${MAX_MANIFEST_BYTES} bytes refused`);
  }
  if (text.includes('\0')) throw new MetadataError(file, 'binary data, expected a manifest');
  const entries: ManifestEntry[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const s = raw.trim();
    if (s === '') return;
    const m = LINE.exec(s);
    if (!m) {
      throw new MetadataError(
        file,
        `not a manifest line (expected "SHA256(FILE)= HEX"): ${JSON.stringify(s.slice(0, 80))}`,
        { line },
      );
    }
    const algorithm = (m[1] ?? '').toLowerCase() as ManifestAlgorithm;
    const checked = checkRelativeName((m[2] ?? '').trim());
    if ('refused' in checked) {
      throw new MetadataError(
        file,
        `file name ${JSON.stringify(m[2])} refused: ${checked.refused}`,
        {
          line,
        },
      );
    }
    const digest = (m[3] ?? '').toLowerCase();
    if (digest.length !== HEX_LENGTH[algorithm]) {
      throw new MetadataError(
        file,
        `${algorithm.toUpperCase()} digest of "${checked.name}" has ${digest.length} hex digits, expected ${HEX_LENGTH[algorithm]}`,
        { line },
      );
    }
    if (seen.has(checked.name)) {
      throw new MetadataError(file, `"${checked.name}" is listed twice`, { line });
    }
    seen.add(checked.name);
    entries.push({ algorithm, name: checked.name, digest, line });
  });
  return entries;
}

/**
 * Compares the digest computed for an entry's file with the manifest's.
 * @param actual the digest computed (lower-case hex), or undefined when the file is absent.
 * @param where how to name the missing file's place in the message (`in the archive`, ...).
 * @throws MetadataError naming the manifest, its line and the file.
 */
export function verifyEntry(
  entry: ManifestEntry,
  actual: string | undefined,
  manifestFile: string,
  where: string,
): void {
  if (actual === undefined) {
    throw new MetadataError(manifestFile, `lists "${entry.name}", which is not ${where}`, {
      line: entry.line,
    });
  }
  if (actual.toLowerCase() !== entry.digest) {
    throw new MetadataError(
      manifestFile,
      `${entry.algorithm.toUpperCase()} digest mismatch for "${entry.name}": the manifest says ${entry.digest}, the file has ${actual.toLowerCase()}`,
      {
        line: entry.line,
        hint: 'the file is corrupt or was changed after export; copy or download it again',
      },
    );
  }
}

/** Hashes data as it streams, with each of `algorithms`. */
export class MultiHash {
  private readonly hashes: Map<ManifestAlgorithm, Hash>;
  constructor(algorithms: Iterable<ManifestAlgorithm>) {
    this.hashes = new Map([...new Set(algorithms)].map((a) => [a, createHash(a)]));
  }
  /** True when there is nothing to compute. */
  get empty(): boolean {
    return this.hashes.size === 0;
  }
  update(chunk: Uint8Array): void {
    for (const h of this.hashes.values()) h.update(chunk);
  }
  /** The digests, lower-case hex, by algorithm. */
  digests(): Map<ManifestAlgorithm, string> {
    return new Map([...this.hashes].map(([a, h]) => [a, h.digest('hex')]));
  }
}
