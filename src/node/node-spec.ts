import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { redactUrlInput } from '../log/redact.js';

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
 *
 * A password in the URL is refused (a usage error), as ssh and virsh refuse one on their
 * command lines: anything in argv is readable by every user of the machine (`ps`,
 * /proc/PID/cmdline) and lands in shell histories. Log in with a key instead (an agent, or
 * --identity). No message quotes the password: inputs are quoted through
 * {@link redactUrlInput}.
 */
export function parseSshUrl(value: string, option = '--host'): SshTarget {
  const shown = `${option} '${redactUrlInput(value)}'`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${shown}: not a URL`, {
      hint: 'expected ssh://user@host:port, e.g. ssh://root@vmhost1:22',
    });
  }
  if (url.protocol !== 'ssh:') {
    throw new UsageError(`${shown}: only ssh:// URLs are supported`, {
      hint: 'expected ssh://user@host:port; omit the option for the local machine',
    });
  }
  if (url.password) {
    throw new UsageError(`${shown}: a password in the URL is not accepted`, {
      hint:
        'a command line is visible to every user of this machine: remove the password and log ' +
        'in with a key (an SSH agent: ssh-add KEY, or --identity FILE; ssh-copy-id installs one)',
    });
  }
  if (!url.hostname) throw new UsageError(`${shown}: no host name`);
  if (url.pathname && url.pathname !== '/') {
    throw new UsageError(`${shown}: unexpected path '${url.pathname}'`);
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
