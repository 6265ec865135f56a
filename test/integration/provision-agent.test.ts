/**
 * The command agent of the provisioner on the SSH node (src/provisioning/remote-agent.ts):
 * the same results and errors as a direct run, without a login shell per command.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CommandError, CommandNotFoundError } from '../../src/errors.js';
import type { Node } from '../../src/node/node.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import { parseSshUrl } from '../../src/node/node-spec.js';
import { AgentNode } from '../../src/provisioning/remote-agent.js';

const sshd = inject('sshd');

describe('command agent on the SSH node', () => {
  const factory = new NodeFactory();
  let inner: Node;
  let agent: AgentNode;

  beforeAll(async () => {
    inner = await factory.get({
      ssh: parseSshUrl(sshd.url),
      identity: sshd.identity,
      knownHosts: sshd.knownHosts,
    });
    agent = new AgentNode(inner);
  });
  afterAll(async () => {
    await agent.stop();
    await factory.closeAll();
  });

  it('runs argv words byte for byte, with stdin and env, no shell', async () => {
    const r = await agent.run(['printf', '%s|', "it's", '$HOME', 'a b', '`x`'], {});
    expect(r.stdout).toBe("it's|$HOME|a b|`x`|");
    expect(r.exitCode).toBe(0);
    const c = await agent.run(['cat'], { stdin: 'through stdin\n' });
    expect(c.stdout).toBe('through stdin\n');
    const e = await agent.run(['sh', '-c', 'echo "$V2V_X"'], { env: { V2V_X: 'value 1' } });
    expect(e.stdout).toBe('value 1\n');
    expect(agent.agentRuns).toBe(3);
  });

  it('gives the same errors as a direct run: exit code, not found, timeout', async () => {
    await expect(agent.run(['sh', '-c', 'echo oops >&2; exit 3'])).rejects.toMatchObject({
      exitCode: 3,
      stderr: 'oops\n',
    });
    const r = await agent.run(['sh', '-c', 'exit 4'], { reject: false });
    expect(r.exitCode).toBe(4);
    await expect(agent.run(['/nonexistent/program'])).rejects.toBeInstanceOf(CommandNotFoundError);
    const t0 = Date.now();
    const err = await agent.run(['sleep', '30'], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('runs commands concurrently, each answer to its own request', async () => {
    const outs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        agent.run(['sh', '-c', `sleep 0.$((RANDOM % 3)); echo ${i}`]),
      ),
    );
    expect(outs.map((o) => o.stdout.trim())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  });

  it('kills an aborted command and reports it aborted', async () => {
    const ac = new AbortController();
    const p = agent.run(['sleep', '30'], { signal: ac.signal }).catch((e: unknown) => e);
    setTimeout(() => ac.abort(), 200);
    const err = await p;
    expect((err as CommandError).aborted).toBe(true);
  });

  it('after stop, commands run directly', async () => {
    const other = new AgentNode(inner);
    expect((await other.run(['echo', 'a'])).stdout).toBe('a\n');
    await other.stop();
    expect((await other.run(['echo', 'b'])).stdout).toBe('b\n');
    expect(other.agentRuns).toBe(1);
  });
});
