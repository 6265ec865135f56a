import type { Logger } from '../log/logger.js';
import { LocalNode } from './local-node.js';
import type { Node } from './node.js';
import { defaultKnownHostsFile, formatSshTarget, type NodeSpec } from './node-spec.js';
import { HostKeyVerifier } from './ssh/host-keys.js';
import { loadAuth } from './ssh/ssh-auth.js';
import {
  DEFAULT_SSH_OPTIONS,
  SshConnection,
  type SshConnectionOptions,
} from './ssh/ssh-connection.js';
import { SshNode } from './ssh/ssh-node.js';

/** What a {@link NodeFactory} gives the nodes it makes. */
export interface NodeFactoryOptions {
  /** Gets a debug line for every command run on a node and every SSH login (`-v`). */
  logger?: Logger | undefined;
}

/**
 * Makes nodes from a {@link NodeSpec} and owns the SSH connection pool: every node for the
 * same user, host, port and identity shares one connection.
 */
export class NodeFactory {
  private readonly local: LocalNode;
  private readonly pool = new Map<string, Promise<SshConnection>>();
  private readonly logger: Logger | undefined;

  constructor(
    private readonly sshOptions: SshConnectionOptions = DEFAULT_SSH_OPTIONS,
    options: NodeFactoryOptions = {},
  ) {
    this.logger = options.logger;
    this.local = new LocalNode({ logger: this.logger });
  }

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
    return new SshNode(await conn, { logger: this.logger });
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
    const auth = await loadAuth(
      { identity: spec.identity, debug: (m) => this.logger?.debug(m) },
      name,
    );
    return new SshConnection(target, auth, verifier, this.sshOptions, this.logger);
  }
}
