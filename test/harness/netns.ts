/**
 * A network namespace of the test's own, standing for a second host: a veth pair joins it to
 * this machine on a /30 of its own (nothing else is routed). A program run in it (`argv`)
 * reaches this machine only at `hostAddress` (a Redis bound there, say); files and unix sockets
 * (libvirtd's) are shared, since only the network is separate.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface TestNetns {
  name: string;
  /** This machine's end of the veth pair. */
  hostAddress: string;
  /** The namespace's end. */
  nsAddress: string;
  /** `argv` run inside the namespace. */
  argv(cmd: readonly string[]): string[];
  remove(): Promise<void>;
}

export async function createNetns(): Promise<TestNetns> {
  const tag = `${process.pid % 10000}${randomInt(100)}`;
  const name = `v2vq-${tag}`;
  const host = `v2vq${tag}a`;
  const peer = `v2vq${tag}b`;
  const net = `10.213.${randomInt(1, 250)}`;
  const ip = (...args: string[]) => exec('ip', args);
  await ip('netns', 'add', name);
  try {
    await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    await ip('link', 'set', peer, 'netns', name);
    await ip('addr', 'add', `${net}.1/30`, 'dev', host);
    await ip('link', 'set', host, 'up');
    await ip('netns', 'exec', name, 'ip', 'addr', 'add', `${net}.2/30`, 'dev', peer);
    await ip('netns', 'exec', name, 'ip', 'link', 'set', peer, 'up');
    await ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (e) {
    await ip('link', 'del', host).catch(() => {});
    await ip('netns', 'del', name).catch(() => {});
    throw e;
  }
  return {
    name,
    hostAddress: `${net}.1`,
    nsAddress: `${net}.2`,
    argv: (cmd) => ['ip', 'netns', 'exec', name, ...cmd],
    async remove() {
      await ip('link', 'del', host).catch(() => {});
      await ip('netns', 'del', name).catch(() => {});
    },
  };
}
