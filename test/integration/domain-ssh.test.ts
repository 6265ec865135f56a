/** The domain API against the real libvirtd, through the SSH node (qemu:///system on the far side). */
import { afterAll, inject } from 'vitest';
import { NodeFactory } from '../../src/node/node-factory.js';
import { parseSshUrl } from '../../src/node/node-spec.js';
import { domainSuite } from './domain-suite.js';

const sshd = inject('sshd');
const factory = new NodeFactory();
afterAll(() => factory.closeAll());

domainSuite('ssh', () =>
  factory.get({ ssh: parseSshUrl(sshd.url), identity: sshd.identity, knownHosts: sshd.knownHosts }),
);
