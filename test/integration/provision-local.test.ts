/** The VCL provisioner through the CLI against the real libvirtd on the local node. */
import { provisionSuite } from './provision-suite.js';

provisionSuite('local', () => ({ node: 'local', identity: null, knownHosts: null }));
