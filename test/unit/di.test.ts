import { describe, expect, it } from 'vitest';
import { createRootContainer, createRunContainer } from '../../src/di/composition-root.js';
import { TOKENS } from '../../src/di/tokens.js';
import { Doctor } from '../../src/doctor/doctor.js';
import type { Logger } from '../../src/log/logger.js';
import type { Node } from '../../src/node/node.js';
import { NodeFactory } from '../../src/node/node-factory.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe('composition root', () => {
  it('gives each run its own container sharing the root node factory', async () => {
    const root = createRootContainer(silent);
    const a = await createRunContainer(root, {});
    const b = await createRunContainer(root, {});
    expect(a).not.toBe(b);
    expect(a.resolve(TOKENS.NodeFactory)).toBe(root.resolve(TOKENS.NodeFactory));
    expect(a.resolve<Node>(TOKENS.Node).name).toBe('local');
    const doctor = a.resolve<Doctor>(TOKENS.Doctor);
    expect(doctor).toBeInstanceOf(Doctor);
    expect(a.resolve(TOKENS.Doctor)).not.toBe(doctor); // a new one per resolve, no hidden state
    expect(root.isRegistered(TOKENS.Node)).toBe(false); // nothing leaks into the root
  });

  it('injects the run node into the doctor (explicit tokens, no decorator metadata)', async () => {
    const root = createRootContainer(silent, new NodeFactory());
    const run = await createRunContainer(root, {});
    const report = await run.resolve<Doctor>(TOKENS.Doctor).run({}, [
      {
        name: 'echo',
        required: true,
        run: async ({ node }) => ({
          ok: true,
          detail: (await node.run(['echo', node.name])).stdout.trim(),
        }),
      },
    ]);
    expect(report).toMatchObject({
      node: 'local',
      ok: true,
      checks: [{ name: 'echo', detail: 'local' }],
    });
  });
});
