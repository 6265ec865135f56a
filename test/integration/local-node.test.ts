import { LocalNode } from '../../src/node/local-node.js';
import { nodeContract } from './node-contract.js';

nodeContract('local', async () => new LocalNode());
