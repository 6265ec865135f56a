/**
 * The composition root: the one place that decides which class serves which token. Modules
 * never reach for tsyringe's global container; they get what they need injected.
 */
import { container, type DependencyContainer } from 'tsyringe';
import { Doctor } from '../doctor/doctor.js';
import type { Logger } from '../log/logger.js';
import { NodeFactory } from '../node/node-factory.js';
import type { NodeSpec } from '../node/node-spec.js';
import { TOKENS } from './tokens.js';

/** The process-wide container: logger and node factory (so the SSH pool is shared). */
export function createRootContainer(
  logger: Logger,
  nodes = new NodeFactory(),
): DependencyContainer {
  const root = container.createChildContainer();
  root.register(TOKENS.Logger, { useValue: logger });
  root.register(TOKENS.NodeFactory, { useValue: nodes });
  return root;
}

/**
 * A child container for one run (one command, one conversion, one load) on one node: runs
 * stay independent while sharing the root's connection pool.
 */
export async function createRunContainer(
  root: DependencyContainer,
  spec: NodeSpec,
): Promise<DependencyContainer> {
  const run = root.createChildContainer();
  const node = await root.resolve<NodeFactory>(TOKENS.NodeFactory).get(spec);
  run.register(TOKENS.Node, { useValue: node });
  run.register(TOKENS.Doctor, { useClass: Doctor });
  return run;
}
