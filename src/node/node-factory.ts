import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { LocalNode } from './local-node.js';
import type { Node } from './node.js';
import { defaultKnownHostsFile, formatSshTarget, type NodeSpec } from './node-spec.js';
import { HostKeyVerifier } from './ssh/host-keys.js';
import {
  DEFAULT_SSH_OPTIONS,
  type SshAuth,
  SshConnection,
  type SshConnectionOptions,
} from './ssh/ssh-connection.js';
import { SshNode } from './ssh/ssh-node.js';

/**
 * Makes nodes from a {@link NodeSpec} and owns the SSH connection pool: every node for the
 * same user, host, port and identity shares one connection.
 */
export class NodeFactory {
  private readonly local = new LocalNode();
  private readonly pool = new Map<string, Promise<SshConnection>>();

  constructor(private readonly sshOptions: SshConnectionOptions = DEFAULT_SSH_OPTIONS) {}

  async get(spec: NodeSpec = {}): Promise<Node> {
    const target = spec.ssh;
    if (!target) return this.local;
    const key = JSON.stringify([
      formatSshTarget(target),
      spec.identity ?? '',
      spec.knownHosts ?? '',
      spec.hostKeyFingerprint ?? '',
      spec.acceptNewHostKey ?? false,
    ]);
    let conn = this.pool.get(key);
    if (!conn) {
      conn = this.connectionFor(spec);
      this.pool.set(key, conn);
      conn.catch(() => this.pool.delete(key));
    }
    return new SshNode(await conn);
  }

  /** Closes every pooled connection. */
  async closeAll(): Promise<void> {
    const conns = await Promise.allSettled([...this.pool.values()]);
    this.pool.clear();
    await Promise.all(
      conns.map((c) => (c.status === 'fulfilled' ? c.value.close() : Promise.resolve())),
    );
  }

  private async connectionFor(spec: NodeSpec): Promise<SshConnection> {
    const target = spec.ssh;
    if (!target) throw new Error('connectionFor needs an SSH target');
    const name = formatSshTarget(target);
    const verifier = new HostKeyVerifier(
      {
        knownHostsFile: spec.knownHosts ?? defaultKnownHostsFile(),
        acceptNew: spec.acceptNewHostKey ?? false,
        pinnedFingerprint: spec.hostKeyFingerprint,
      },
      name,
      target.host,
      target.port,
    );
    return new SshConnection(target, await loadAuth(spec), verifier, this.sshOptions);
  }
}

/** The key from --identity, else the SSH agent, else the first default key that exists. */
async function loadAuth(spec: NodeSpec): Promise<SshAuth> {
  if (spec.identity) {
    try {
      return { privateKey: await fs.readFile(spec.identity) };
    } catch (e) {
      throw new UsageError(
        `--identity '${spec.identity}': cannot read the key: ${(e as NodeJS.ErrnoException).code ?? e}`,
        { hint: 'give the path of a private key file (OpenSSH or PEM format)' },
      );
    }
  }
  if (process.env.SSH_AUTH_SOCK) return { agent: process.env.SSH_AUTH_SOCK };
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    try {
      return { privateKey: await fs.readFile(path.join(os.homedir(), '.ssh', name)) };
    } catch {
      // try the next one
    }
  }
  throw new UsageError(
    `no SSH key for ${formatSshTarget(spec.ssh ?? { user: '', host: '', port: 22 })}`,
    {
      hint: 'give a key with --identity FILE, or start an SSH agent (SSH_AUTH_SOCK)',
    },
  );
}
