/** The VCL provisioner through the CLI against the real libvirtd, over the SSH node. */
import { inject } from 'vitest';
import { provisionSuite } from './provision-suite.js';

const sshd = inject('sshd');

provisionSuite('ssh', () => ({
  node: sshd.url,
  identity: sshd.identity,
  knownHosts: sshd.knownHosts,
}));
