/**
 * Host key verification for SSH nodes, the way OpenSSH does it: a known_hosts file (plain,
 * hashed `|1|salt|hash`, `[host]:port`, wildcards, negations, `@revoked`), or a pinned
 * fingerprint. An unknown key is refused unless accepting new keys was asked for explicitly;
 * a changed key is always refused.
 */
import { createHash, createHmac } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { HostKeyMismatchError, NodeFileError, UnknownHostKeyError } from '../../errors.js';

/** How a node's host key is checked. */
export interface HostKeyPolicy {
  /** The known_hosts file to check against (and to append to with `acceptNew`). */
  knownHostsFile: string;
  /** Accept (and record) a key for a host that has no key on record. Never a changed key. */
  acceptNew: boolean;
  /** `SHA256:...` fingerprint the key must have; when set, known_hosts is not consulted. */
  pinnedFingerprint?: string | undefined;
}

/** One line of a known_hosts file. */
export interface KnownHostEntry {
  marker: '@revoked' | '@cert-authority' | undefined;
  /** The host patterns (plain), or one hashed pattern. */
  patterns: string[];
  keyType: string;
  /** The key blob, base64. */
  key: string;
  line: number;
}

/** OpenSSH-style fingerprint of a key blob: `SHA256:` + unpadded base64. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a key blob (its first SSH string), e.g. `ssh-ed25519`. */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  if (len > keyBlob.length - 4) return 'unknown';
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** The name known_hosts uses for a host and port: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') {
      marker = fields.shift() as KnownHostEntry['marker'];
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key) return; // malformed lines are skipped, as OpenSSH does
    entries.push({ marker, patterns: hosts.split(','), keyType, key, line: i + 1 });
  });
  return entries;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  return globToRegExp(pattern).test(name);
}

/** True when the entry's host patterns match `name` (negated patterns veto a match). */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const p of entry.patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/** Checks the key one host presents. One instance per connection target. */
export class HostKeyVerifier {
  private readonly name: string;

  constructor(
    private readonly policy: HostKeyPolicy,
    /** The node, for messages: `ssh://user@host:port`. */
    private readonly node: string,
    host: string,
    port: number,
  ) {
    this.name = knownHostsName(host, port);
  }

  /**
   * Key types on record for this host, so the SSH negotiation asks for one of them first
   * (as OpenSSH does): otherwise a host with an RSA key on record that also has an Ed25519 key
   * would look changed.
   */
  async knownKeyTypes(): Promise<string[]> {
    if (this.policy.pinnedFingerprint) return [];
    const entries = await this.entries();
    return [
      ...new Set(
        entries.filter((e) => !e.marker && entryMatches(e, this.name)).map((e) => e.keyType),
      ),
    ];
  }

  /** Resolves when the key is trusted; throws the matching error otherwise. */
  async verify(keyBlob: Buffer): Promise<void> {
    const fingerprint = fingerprintOf(keyBlob);
    const pinned = this.policy.pinnedFingerprint;
    if (pinned) {
      if (normalizeFingerprint(pinned) !== fingerprint) {
        throw new HostKeyMismatchError(this.node, fingerprint, `pinned ${pinned}`);
      }
      return;
    }
    const entries = (await this.entries()).filter((e) => entryMatches(e, this.name));
    const key = keyBlob.toString('base64');
    if (entries.some((e) => e.marker === '@revoked' && e.key === key)) {
      throw new HostKeyMismatchError(
        this.node,
        fingerprint,
        `a @revoked entry for this key in ${this.policy.knownHostsFile}`,
      );
    }
    const plain = entries.filter((e) => !e.marker);
    if (plain.some((e) => e.key === key)) return;
    const sameType = plain.find((e) => e.keyType === keyTypeOf(keyBlob));
    const other = sameType ?? plain[0];
    if (other) {
      const expected = fingerprintOf(Buffer.from(other.key, 'base64'));
      throw new HostKeyMismatchError(
        this.node,
        fingerprint,
        `${expected} (${this.policy.knownHostsFile}:${other.line})`,
      );
    }
    if (!this.policy.acceptNew) {
      throw new UnknownHostKeyError(this.node, fingerprint, this.policy.knownHostsFile);
    }
    await this.record(keyBlob);
  }

  private async entries(): Promise<KnownHostEntry[]> {
    try {
      return parseKnownHosts(await fs.readFile(this.policy.knownHostsFile, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new NodeFileError('local', 'read', this.policy.knownHostsFile, String(e), {
        cause: e,
      });
    }
  }

  private async record(keyBlob: Buffer): Promise<void> {
    const file = this.policy.knownHostsFile;
    const line = `${this.name} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`;
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await fs.appendFile(file, line, { mode: 0o600 });
  }
}

/** Accepts `SHA256:xxx`, with or without base64 padding. */
function normalizeFingerprint(fp: string): string {
  const trimmed = fp.trim().replace(/=+$/, '');
  return trimmed.startsWith('SHA256:') ? trimmed : `SHA256:${trimmed}`;
}
