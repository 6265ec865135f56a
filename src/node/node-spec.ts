import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError } from '../errors.js';

/** Where an SSH node is. */
export interface SshTarget {
  user: string;
  host: string;
  port: number;
}

/** How to reach a node: absent `ssh` means the local machine. */
export interface NodeSpec {
  ssh?: SshTarget | undefined;
  /** Private key file for SSH (default: the SSH agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa). */
  identity?: string | undefined;
  /** known_hosts file (default ~/.ssh/known_hosts). */
  knownHosts?: string | undefined;
  /** Record the key of a host that has none on record. */
  acceptNewHostKey?: boolean | undefined;
  /** Pinned `SHA256:...` host key fingerprint instead of known_hosts. */
  hostKeyFingerprint?: string | undefined;
}

/**
 * Parses `--host ssh://[user@]host[:port]` (IPv6 as `[::1]`). The user defaults to the
 * current user, the port to 22.
 */
export function parseSshUrl(value: string, option = '--host'): SshTarget {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${option} '${value}': not a URL`, {
      hint: 'expected ssh://user@host:port, e.g. ssh://root@vmhost1:22',
    });
  }
  if (url.protocol !== 'ssh:') {
    throw new UsageError(`${option} '${value}': only ssh:// URLs are supported`, {
      hint: 'expected ssh://user@host:port; omit the option for the local machine',
    });
  }
  if (!url.hostname) throw new UsageError(`${option} '${value}': no host name`);
  if (url.password) {
    throw new UsageError(`${option} '${value}': passwords in URLs are not accepted`, {
      hint: 'use key authentication: --identity FILE or an SSH agent',
    });
  }
  if (url.pathname && url.pathname !== '/') {
    throw new UsageError(`${option} '${value}': unexpected path '${url.pathname}'`);
  }
  const port = url.port ? Number(url.port) : 22;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const user = url.username ? decodeURIComponent(url.username) : os.userInfo().username;
  return { user, host, port };
}

/** `ssh://user@host:port`, the name an SSH node goes by in messages. */
export function formatSshTarget(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `ssh://${t.user}@${host}:${t.port}`;
}

export function defaultKnownHostsFile(): string {
  return path.join(os.homedir(), '.ssh', 'known_hosts');
}
