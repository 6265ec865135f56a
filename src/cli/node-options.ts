import type { Argv } from 'yargs';
import type { NodeSpec } from '../node/node-spec.js';
import { parseSshUrl } from '../node/node-spec.js';

/** The options every command that touches a node takes, the same everywhere. */
export interface NodeArgs {
  host?: string | undefined;
  identity?: string | undefined;
  'known-hosts'?: string | undefined;
  'accept-new-host-key'?: boolean | undefined;
  'host-key-fingerprint'?: string | undefined;
}

export function withNodeOptions<T>(y: Argv<T>): Argv<T & NodeArgs> {
  return y
    .option('host', {
      type: 'string',
      describe: 'the node: ssh://user@host:port (default: this machine)',
      group: 'Node:',
    })
    .option('identity', {
      type: 'string',
      describe:
        'SSH private key, tried after the SSH agent (default: ~/.ssh/id_*); for a key with a ' +
        'passphrase, ssh-add it or set V2V_LOAD_SSH_PASSPHRASE',
      group: 'Node:',
    })
    .option('known-hosts', {
      type: 'string',
      describe: 'known_hosts file to verify the host key (default: ~/.ssh/known_hosts)',
      group: 'Node:',
    })
    .option('accept-new-host-key', {
      type: 'boolean',
      describe: 'trust and record the key of a host not yet in known_hosts (never a changed key)',
      group: 'Node:',
    })
    .option('host-key-fingerprint', {
      type: 'string',
      describe: 'pin the host key: SHA256:... (instead of known_hosts)',
      group: 'Node:',
    }) as Argv<T & NodeArgs>;
}

export function nodeSpecFrom(args: NodeArgs): NodeSpec {
  return {
    ...(args.host ? { ssh: parseSshUrl(args.host, '--host') } : {}),
    identity: args.identity,
    knownHosts: args['known-hosts'],
    acceptNewHostKey: args['accept-new-host-key'],
    hostKeyFingerprint: args['host-key-fingerprint'],
  };
}
