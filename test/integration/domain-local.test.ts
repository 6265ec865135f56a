/** The domain API against the real libvirtd on the local node. */
import { afterAll } from 'vitest';
import { NodeFactory } from '../../src/node/node-factory.js';
import { domainSuite } from './domain-suite.js';

const factory = new NodeFactory();
afterAll(() => factory.closeAll());

domainSuite('local', () => factory.get());
