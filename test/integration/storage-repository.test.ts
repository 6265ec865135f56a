/**
 * The VCL repository and datastore rules and the master cache, with the real qemu-img on the
 * local and the SSH node: exact names (-v1 / -v10), excluded extensions, split VMDKs through
 * their descriptor, sizes from JSON, 20 concurrent master requests → one copy, stale locks.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '../../src/errors.js';
import type { Node, RunOptions } from '../../src/node/node.js';
import type { StorageError } from '../../src/storage/errors.js';
import { MasterCache } from '../../src/storage/master-cache.js';
import { QemuImg } from '../../src/storage/qemu-img.js';
import {
  doesImageExist,
  findImageIn,
  findInRepository,
  imageSize,
} from '../../src/storage/repository.js';
import {
  NODE_KINDS,
  names,
  nodeOf,
  qemuImg,
  randomRaw,
  sameData,
  separateNodes,
  tempDir,
  wrapNode,
} from './storage-helpers.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `cond` holds (looked at every 20 ms), or rejects after `ms`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 200_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await sleep(20);
  }
}

async function deadPid(): Promise<number> {
  const child = spawn('true');
  const pid = child.pid as number;
  await new Promise((r) => child.on('exit', r));
  return pid;
}

describe.each(NODE_KINDS)('repository and master cache on the %s node', (kind) => {
  let node: Node;
  let root: string;
  let ds: string;
  let repo: string;
  let q: QemuImg;

  beforeAll(async () => {
    node = await nodeOf(kind);
    root = await tempDir(`repo-${kind}`);
    ds = path.join(root, 'datastore');
    repo = path.join(root, 'repository');
    await fs.mkdir(ds);
    await fs.mkdir(repo);
    q = new QemuImg(node, [ds, repo]);
    const raw = path.join(root, 'data.raw');
    await randomRaw(raw, 4, 2);
    await qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', raw, path.join(ds, 'img-v1.qcow2')]);
    await qemuImg(['create', '-q', '-f', 'qcow2', path.join(ds, 'img-v10.qcow2'), '8M']);
    for (const ext of ['vmx', 'txt', 'xml']) {
      await fs.writeFile(path.join(ds, `img-v1.${ext}`), 'not an image');
      await fs.writeFile(path.join(ds, `only-v2.${ext}`), 'not an image');
    }
    // repository: a directory per image holding a split VMDK, and a top-level sparse VMDK
    const win = path.join(repo, 'winxp-v3');
    await fs.mkdir(win);
    await qemuImg([
      'create',
      '-q',
      '-f',
      'vmdk',
      '-o',
      'subformat=twoGbMaxExtentSparse',
      path.join(win, 'winxp-v3.vmdk'),
      '3G',
    ]);
    await fs.writeFile(path.join(win, 'winxp-v3.vmx'), 'displayName = "winxp"\n');
    await fs.writeFile(path.join(win, 'winxp-v3-s009.vmdk'), 'stray, not in the descriptor');
    await qemuImg(['convert', '-f', 'raw', '-O', 'vmdk', raw, path.join(repo, 'lnx-v2.vmdk')]);
    await fs.writeFile(path.join(repo, 'lnx-v2.txt'), 'notes');
    await qemuImg(['convert', '-f', 'raw', '-O', 'vmdk', raw, path.join(repo, 'lnx-v20.vmdk')]);
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('finds by exact name: -v1 never matches -v10; .vmx/.txt/.xml ignored', async () => {
    const v1 = await findImageIn(node, ds, 'img-v1', 'datastore');
    expect(v1).toEqual({
      entry: { path: path.join(ds, 'img-v1.qcow2'), format: 'qcow2' },
      files: [path.join(ds, 'img-v1.qcow2')],
      where: 'datastore',
    });
    expect((await findImageIn(node, ds, 'img-v10', 'datastore'))?.files).toEqual([
      path.join(ds, 'img-v10.qcow2'),
    ]);
    expect(await findImageIn(node, ds, 'img-v', 'datastore')).toBeUndefined();
    expect(await findImageIn(node, ds, 'only-v2', 'datastore')).toBeUndefined();
  });

  it('a split VMDK is found through its descriptor, with the extents it lists', async () => {
    const win = path.join(repo, 'winxp-v3');
    const found = await findInRepository(node, repo, 'winxp-v3');
    expect(found).toEqual({
      entry: { path: path.join(win, 'winxp-v3.vmdk'), format: 'vmdk' },
      files: ['winxp-v3.vmdk', 'winxp-v3-s001.vmdk', 'winxp-v3-s002.vmdk'].map((f) =>
        path.join(win, f),
      ),
      where: 'repository',
    });
    const lnx = await findInRepository(node, repo, 'lnx-v2');
    expect(lnx?.files).toEqual([path.join(repo, 'lnx-v2.vmdk')]);
  });

  it('does_image_exist: the datastore first, then the repository', async () => {
    expect(
      (await doesImageExist(node, { datastore: ds, repository: repo, image: 'img-v1' }))?.where,
    ).toBe('datastore');
    expect(
      (await doesImageExist(node, { datastore: ds, repository: repo, image: 'lnx-v2' }))?.where,
    ).toBe('repository');
    expect(
      await doesImageExist(node, { datastore: ds, repository: repo, image: 'nope-v1' }),
    ).toBeUndefined();
    expect(await doesImageExist(node, { datastore: ds, image: 'lnx-v2' })).toBeUndefined();
    await expect(doesImageExist(node, { datastore: ds, image: '../etc' })).rejects.toThrow(
      'is not a safe file name',
    );
  });

  it('two images of one name are an error', async () => {
    await fs.writeFile(path.join(ds, 'dup-v1.raw'), Buffer.alloc(512));
    await fs.writeFile(path.join(ds, 'dup-v1.img'), Buffer.alloc(512));
    await expect(findImageIn(node, ds, 'dup-v1', 'datastore')).rejects.toThrow(
      `${path.join(ds, 'dup-v1')}: several images have this name: dup-v1.img, dup-v1.raw`,
    );
  });

  it('size in bytes and MiB from JSON, over extents and the backing chain', async () => {
    const v1 = { path: path.join(ds, 'img-v1.qcow2'), format: 'qcow2' as const };
    const base = await q.info(v1);
    const cow = { path: path.join(ds, 'pc_1-v1.qcow2'), format: 'qcow2' as const };
    await q.create(cow, { backing: v1 });
    const top = await q.info(cow);
    const s = await imageSize(q, cow);
    expect(s).toEqual({
      bytes: base.actualBytes + top.actualBytes,
      mib: Math.ceil((base.actualBytes + top.actualBytes) / MiB),
      virtualBytes: 4 * MiB,
      chain: [cow.path, v1.path],
    });
    expect(s.bytes).toBeGreaterThan(2 * MiB);
    const split = await imageSize(q, {
      path: path.join(repo, 'winxp-v3', 'winxp-v3.vmdk'),
      format: 'vmdk',
    });
    let du = 0;
    for (const f of ['winxp-v3.vmdk', 'winxp-v3-s001.vmdk', 'winxp-v3-s002.vmdk']) {
      du += (await fs.stat(path.join(repo, 'winxp-v3', f))).blocks * 512;
    }
    expect(split.bytes).toBe(du);
    expect(split.virtualBytes).toBe(3 * 1024 * MiB);
  });

  it('20 concurrent requests for a missing master copy it once (lock on the node)', async () => {
    let copies = 0;
    // 20 loads as 20 processes would be: on SSH, spread over 4 connections of their own
    const sep = await separateNodes(kind, 4);
    const caches = Array.from(
      { length: 20 },
      (_, i) =>
        new MasterCache(new QemuImg(sep.nodes[i % 4] as Node, [ds, repo]), {
          pollMs: 50,
          onCopy: () => copies++,
        }),
    );
    const results = await Promise.all(
      caches.map((c) => c.ensure({ datastore: ds, repository: repo, image: 'lnx-v2' })),
    ).finally(sep.close);
    const master = path.join(ds, 'lnx-v2.qcow2');
    expect(copies).toBe(1);
    expect(new Set(results.map((r) => r.path))).toEqual(new Set([master]));
    expect(await sameData(path.join(repo, 'lnx-v2.vmdk'), 'vmdk', master, 'qcow2')).toBe(true);
    expect((await names(ds)).filter((n) => n.startsWith('.'))).toEqual([]);
    // 20 caches sharing one node (on SSH: one connection, channels limited): one copy too
    await Promise.all(
      Array.from({ length: 20 }, () =>
        new MasterCache(q, { pollMs: 50, onCopy: () => copies++ }).ensure({
          datastore: ds,
          repository: repo,
          image: 'winxp-v3',
        }),
      ),
    );
    expect(copies).toBe(2);
    expect(
      (await q.info({ path: path.join(ds, 'winxp-v3.qcow2'), format: 'qcow2' })).virtualBytes,
    ).toBe(3 * 1024 * MiB);
  });

  it('a stale lock from a dead process is recovered', async () => {
    const lock = MasterCache.lockDirOf(path.join(ds, 'lnx-v20.qcow2'));
    await fs.mkdir(lock);
    const owner = { host: os.hostname(), pid: await deadPid(), time: Date.now(), token: 'dead' };
    await fs.writeFile(path.join(lock, 'owner.json'), JSON.stringify(owner));
    await fs.writeFile(path.join(ds, '.lnx-v20.qcow2.tmp-0123456789ab'), 'half a copy');
    let copies = 0;
    const cache = new MasterCache(q, { pollMs: 50, onCopy: () => copies++ });
    const m = await cache.ensure({ datastore: ds, repository: repo, image: 'lnx-v20' });
    expect(m.path).toBe(path.join(ds, 'lnx-v20.qcow2'));
    expect(copies).toBe(1);
    expect((await names(ds)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it.each([
    ['a new owner record', true],
    ['a lock being made (no record yet)', false],
  ])(
    'after a takeover (%s) the old owner neither refreshes nor removes the lock',
    async (_, withRecord) => {
      const image = withRecord ? 'taken-v1' : 'taken-v2';
      await fs.copyFile(path.join(repo, 'lnx-v2.vmdk'), path.join(repo, `${image}.vmdk`));
      const master = path.join(ds, `${image}.qcow2`);
      const lock = MasterCache.lockDirOf(master);
      const record = path.join(lock, 'owner.json');
      const theirs = { host: 'other.invalid', pid: 4242, time: Date.now(), token: 'new-owner' };
      let taken = false;
      let looked = false;
      let convertFailed = false;
      let waitingAgain = false;
      const written: string[] = [];
      const removed: string[] = [];
      const racy = wrapNode(node, {
        run: async (argv: readonly string[], options?: RunOptions) => {
          if (argv[0] === 'qemu-img' && argv[1] === 'convert' && !taken) {
            // While we copy, another process takes the lock over (as if our heartbeat had been
            // late); then our heartbeat has a look at it.
            const aside = `${lock}.taken`;
            await fs.rename(lock, aside);
            await fs.rm(aside, { recursive: true });
            await fs.mkdir(lock);
            if (withRecord) await fs.writeFile(record, JSON.stringify(theirs));
            taken = true;
            // our heartbeat looks at the lock, sees it is not ours and stops our copy
            await until('a heartbeat after the takeover', () => looked, 100_000).catch(() => {});
            await until(
              'the copy is stopped',
              () => options?.signal?.aborted === true,
              100_000,
            ).catch(() => {});
            return node.run(argv, options).catch((e: unknown) => {
              convertFailed = true;
              throw e;
            });
          }
          if (taken && argv.includes(lock)) removed.push(argv.join(' '));
          return node.run(argv, options);
        },
        readFile: async (p: string) => {
          if (taken && p === record) looked = true;
          return node.readFile(p);
        },
        writeFileAtomic: async (p: string, data: string | Uint8Array, o?: { mode?: number }) => {
          if (taken && p === record) written.push(String(data));
          return node.writeFileAtomic(p, data, o);
        },
        rename: async (from: string, to: string, o?: { noReplace?: boolean }) => {
          if (taken && from === lock) removed.push(`rename ${from} ${to}`);
          if (convertFailed && to === lock) waitingAgain = true;
          return node.rename(from, to, o);
        },
        remove: async (p: string, o?: { recursive?: boolean }) => {
          if (taken && p === lock) removed.push(`remove ${p}`);
          return node.remove(p, o);
        },
      });
      let copies = 0;
      const cache = new MasterCache(new QemuImg(racy, [ds, repo]), {
        heartbeatMs: 50,
        pollMs: 50,
        maxPollMs: 200,
        staleMs: 3_600_000, // the new owner stays live however slow the machine
        onCopy: () => copies++,
      });
      const done = cache.ensure({ datastore: ds, repository: repo, image });
      // It stops its copy and waits for the new owner like anyone else.
      await until('the old owner waits for the lock again', () => waitingAgain);
      expect(convertFailed).toBe(true);
      expect(written).toEqual([]);
      expect(removed).toEqual([]);
      // (a beat under way during the takeover may have left its own beat file: never read)
      const ours = (n: string) => n.startsWith('beat-') && n !== 'beat-new-owner';
      expect((await names(lock)).filter((n) => !ours(n))).toEqual(withRecord ? ['owner.json'] : []);
      if (withRecord) expect(JSON.parse(await fs.readFile(record, 'utf8'))).toEqual(theirs);
      // The new owner finishes: the master appears, its lock goes.
      const part = path.join(ds, `${image}.part`);
      await qemuImg([
        'convert',
        '-f',
        'vmdk',
        '-O',
        'qcow2',
        path.join(repo, `${image}.vmdk`),
        part,
      ]);
      await fs.rename(part, master);
      await fs.rm(lock, { recursive: true });
      expect((await done).path).toBe(master);
      expect(copies).toBe(1);
      expect((await names(ds)).filter((n) => n.startsWith('.'))).toEqual([]);
    },
  );

  it('a slow node costs attempts, not the wait: lock commands past their bound are retried', async () => {
    await fs.copyFile(path.join(repo, 'lnx-v2.vmdk'), path.join(repo, 'slow-v1.vmdk'));
    const master = path.join(ds, 'slow-v1.qcow2');
    const lock = MasterCache.lockDirOf(master);
    let slowed = 0;
    const slow = wrapNode(node, {
      // The lock command of the first two attempts answers long after the attempt's bound:
      // a command that hangs (killed at its own timeout) or one whose answer comes late.
      run: async (argv: readonly string[], options?: RunOptions) => {
        if (argv.includes(lock) && slowed < 2) {
          slowed++;
          const ms = options?.timeoutMs ?? 60_000;
          await sleep(ms);
          throw new CommandError({
            argv: [...argv],
            node: node.name,
            exitCode: undefined,
            signal: 'SIGKILL',
            stdout: '',
            stderr: '',
            durationMs: ms,
            timedOut: true,
            aborted: false,
          });
        }
        return node.run(argv, options);
      },
      rename: async (from: string, to: string, o?: { noReplace?: boolean }) => {
        if (to === lock && slowed < 2) {
          slowed++;
          await sleep(1500);
        }
        return node.rename(from, to, o);
      },
    });
    let copies = 0;
    const m = await new MasterCache(new QemuImg(slow, [ds, repo]), {
      attemptMs: 300,
      pollMs: 50,
      onCopy: () => copies++,
    }).ensure({ datastore: ds, repository: repo, image: 'slow-v1' });
    expect(slowed).toBe(2);
    expect(m.path).toBe(master);
    expect(copies).toBe(1);
    expect(await sameData(path.join(repo, 'slow-v1.vmdk'), 'vmdk', master, 'qcow2')).toBe(true);
    // the late answers did no harm: no lock, no temporary lock left
    await sleep(1600);
    expect((await names(ds)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a live lock of another host is waited for; an old one is taken over', async () => {
    await fs.copyFile(path.join(repo, 'lnx-v2.vmdk'), path.join(repo, 'other-v1.vmdk'));
    const lock = MasterCache.lockDirOf(path.join(ds, 'other-v1.qcow2'));
    await fs.mkdir(lock);
    const owner = { host: 'other.invalid', pid: 4242, time: Date.now(), token: 'live' };
    await fs.writeFile(path.join(lock, 'owner.json'), JSON.stringify(owner));
    const req = { datastore: ds, repository: repo, image: 'other-v1' };
    // Long enough for a slow SSH node (a login shell per command) to read the owner record.
    const late = await new MasterCache(q, { pollMs: 50, waitMs: 8000 })
      .ensure(req)
      .catch((e: unknown) => e);
    // the lock and its owner record named
    // (on a slow node the message goes on to say how many lock commands got no answer)
    expect(
      (late as Error).message.startsWith(
        `${path.join(ds, 'other-v1.qcow2')}: waited 8000 ms for the lock ${lock} held by pid 4242 ` +
          `on other.invalid (owner record: last heartbeat ${new Date(owner.time).toISOString()}, token live)`,
      ),
    ).toBe(true);
    expect((late as StorageError).hint).toBe(
      `if that process is gone, remove the lock directory ${lock}`,
    );
    expect(await names(lock)).toEqual(['owner.json']);
    await fs.writeFile(
      path.join(lock, 'owner.json'),
      JSON.stringify({ ...owner, time: Date.now() - 60_000 }),
    );
    const m = await new MasterCache(q, { pollMs: 50, staleMs: 30_000 }).ensure(req);
    expect(m.path).toBe(path.join(ds, 'other-v1.qcow2'));
    expect((await names(ds)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a lock directory whose maker died before naming itself is stale after staleMs', async () => {
    await fs.copyFile(path.join(repo, 'lnx-v2.vmdk'), path.join(repo, 'orphan-v1.vmdk'));
    const lock = MasterCache.lockDirOf(path.join(ds, 'orphan-v1.qcow2'));
    await fs.mkdir(lock);
    const old = new Date(Date.now() - 120_000);
    await fs.utimes(lock, old, old);
    const m = await new MasterCache(q, { pollMs: 50, staleMs: 60_000 }).ensure({
      datastore: ds,
      repository: repo,
      image: 'orphan-v1',
    });
    expect(m.path).toBe(path.join(ds, 'orphan-v1.qcow2'));
    expect((await names(ds)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('an image in neither place is a clear error; no lock or temp file is left', async () => {
    await expect(
      new MasterCache(q).ensure({ datastore: ds, repository: repo, image: 'ghost-v1' }),
    ).rejects.toThrow(`image ghost-v1 is neither in the datastore ${ds} nor in the repository`);
    expect((await names(ds)).filter((n) => n.startsWith('.') || n.startsWith('ghost'))).toEqual([]);
  });
});
