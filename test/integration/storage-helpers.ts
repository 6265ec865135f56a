/**
 * Shared by the storage integration tests: run a suite on the local and the SSH node, make
 * small images with the real qemu-img, checksums, and "nothing left behind" listings.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, inject } from 'vitest';
import type { Node } from '../../src/node/node.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import { parseSshUrl } from '../../src/node/node-spec.js';
import { sha256File } from '../harness/hash.js';

const exec = promisify(execFile);

/** The prefix of every temp dir these tests make. */
export const PREFIX = 'v2v-load-storage-';

/** The two kinds of node every storage test runs on. */
export const NODE_KINDS = ['local', 'ssh'] as const;
export type NodeKind = (typeof NODE_KINDS)[number];

const factory = new NodeFactory();
afterAll(() => factory.closeAll());

/** The node of a kind (the SSH one against the test sshd on 127.0.0.1). */
export function nodeOf(kind: NodeKind): Promise<Node> {
  if (kind === 'local') return factory.get({});
  const sshd = inject('sshd');
  return factory.get({
    ssh: parseSshUrl(sshd.url),
    identity: sshd.identity,
    knownHosts: sshd.knownHosts,
  });
}

/**
 * `count` separate nodes of a kind, as separate processes would have: for SSH, `count`
 * connections of their own (close them with `close`); for local, the local node.
 */
export async function separateNodes(
  kind: NodeKind,
  count: number,
): Promise<{ nodes: Node[]; close: () => Promise<void> }> {
  const factories = Array.from({ length: count }, () => new NodeFactory());
  const sshd = kind === 'ssh' ? inject('sshd') : undefined;
  const nodes = await Promise.all(
    factories.map((f) =>
      f.get(
        sshd
          ? { ssh: parseSshUrl(sshd.url), identity: sshd.identity, knownHosts: sshd.knownHosts }
          : {},
      ),
    ),
  );
  return { nodes, close: async () => void (await Promise.all(factories.map((f) => f.closeAll()))) };
}

/** A fresh temp dir (0755) of this test. */
export async function tempDir(tag: string): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), `${PREFIX}${tag}-`));
  await fs.chmod(d, 0o755);
  return d;
}

/** Runs qemu-img (or qemu-io with `tool`) locally to build fixtures. */
export async function qemuImg(args: string[], tool = 'qemu-img'): Promise<string> {
  const r = await exec(tool, args, { maxBuffer: 64 * 1024 * 1024 });
  return r.stdout;
}

/** Writes `pattern` bytes at `offset` (length `len`) into an image with qemu-io. */
export async function writePattern(
  file: string,
  format: string,
  offset: number,
  len: number,
  pattern: number,
): Promise<void> {
  await qemuImg(['-f', format, '-c', `write -P ${pattern} ${offset} ${len}`, file], 'qemu-io');
}

/** A raw image of `mib` MiB with random data in its first `dataMib` MiB. */
export async function randomRaw(file: string, mib: number, dataMib = mib): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    for (let i = 0; i < dataMib; i++) {
      await fh.write(randomBytes(1024 * 1024), 0, 1024 * 1024, i * 1024 * 1024);
    }
    await fh.truncate(mib * 1024 * 1024);
  } finally {
    await fh.close();
  }
}

export { sha256File };

/** True when two images hold the same data (`qemu-img compare`). */
export async function sameData(a: string, fa: string, b: string, fb: string): Promise<boolean> {
  try {
    await exec('qemu-img', ['compare', '-q', '-f', fa, '-F', fb, a, b]);
    return true;
  } catch {
    return false;
  }
}

/** Every name in a directory, sorted (for "nothing left behind"). */
export async function names(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).sort();
}

/** A canary file in its own directory of `root`: what hostile images point at. */
export async function canary(root: string): Promise<{ file: string; sha: string }> {
  const dir = path.join(root, 'canary-dir');
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'canary');
  await fs.writeFile(file, Buffer.alloc(1024 * 1024, 'CANARY!'));
  return { file, sha: await sha256File(file) };
}

/**
 * Removes the "backing format" header extension of a qcow2 file, leaving a backing file whose
 * format qemu-img would have to probe (what old tools wrote).
 */
export async function dropBackingFormat(file: string): Promise<void> {
  const buf = await fs.readFile(file);
  const headerLength = buf.readUInt32BE(100);
  let at = headerLength;
  while (at + 8 <= buf.length) {
    const type = buf.readUInt32BE(at);
    if (type === 0) break;
    if (type === 0xe2792aca) {
      buf.writeUInt32BE(0, at); // end of extensions here
      await fs.writeFile(file, buf);
      return;
    }
    const len = buf.readUInt32BE(at + 4);
    at += 8 + Math.ceil(len / 8) * 8;
  }
  throw new Error(`${file}: no backing format extension`);
}

/**
 * `inner` with some of its methods replaced (the others still act on `inner`): a node that
 * is slow, or lets a test act between two steps of the code under test.
 */
export function wrapNode(inner: Node, over: Partial<Node>): Node {
  return new Proxy(inner, {
    get(target, key) {
      if (Object.hasOwn(over, key)) return over[key as keyof Node];
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
