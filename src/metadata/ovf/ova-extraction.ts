/**
 * Where an OVA reader writes, when it must: one private directory (0700) under `--tmp-dir`
 * (default /var/tmp: large files do not belong in the often RAM-backed os.tmpdir(), as virt-v2v's
 * `large_tmpdir` says), made on first use, registered with the run's cleanup stack when there is
 * one; every member written is checked against the file system's free space first.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MetadataError, UsageError } from '../../errors.js';
import { scratchName } from '../../node/scratch.js';
import type { CleanupHandle, CleanupStack } from '../../run/cleanup.js';
import { StorageError } from '../../storage/errors.js';

/** The default of `--tmp-dir`. */
export const DEFAULT_OVA_TMP_DIR = '/var/tmp';

/** Free bytes for an unprivileged writer in `dir`'s file system (statfs: f_bavail × f_bsize). */
export async function freeBytes(dir: string): Promise<number> {
  const st = await fs.statfs(dir);
  return Number(st.bavail) * Number(st.bsize);
}

/**
 * Throws a StorageError naming `dir`, `what`, and both numbers when `needed` bytes do not fit in
 * `dir`'s free space.
 */
export async function ensureFreeSpace(dir: string, needed: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (needed > free) {
    throw new StorageError(
      dir,
      `not enough free space to extract ${what}: ${needed} bytes needed, ${free} bytes free`,
      { hint: 'free space there, or give --tmp-dir DIR on a file system with room' },
    );
  }
}

/** The extraction directory of one read. */
export class Extraction {
  private dir: string | undefined;
  private registered: CleanupHandle | undefined;

  constructor(
    /** `--tmp-dir`, or the default. */
    readonly parent: string,
    /** Named in messages about members (`/x/a.ova`). */
    private readonly archive: string,
    private readonly cleanup: CleanupStack | undefined,
  ) {}

  /** The directory's path once it was made. */
  get path(): string | undefined {
    return this.dir;
  }

  private async ensureDir(): Promise<string> {
    if (this.dir !== undefined) return this.dir;
    const st = await fs.stat(this.parent).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new UsageError(
        `--tmp-dir ${this.parent}: ${st ? 'not a directory' : 'no such directory'}`,
        { hint: 'give an existing directory with room for the OVA members to extract' },
      );
    }
    // Named for its owner: a run killed outright leaves it to the next run's sweep.
    const dir = scratchName(path.join(this.parent, 'v2v-load-ova-'));
    await fs.mkdir(dir, { mode: 0o700 });
    await fs.chmod(dir, 0o700);
    this.dir = dir;
    this.registered = this.cleanup?.defer(`remove OVA extraction directory ${dir}`, () =>
      fs.rm(dir, { recursive: true, force: true }),
    );
    return dir;
  }

  /**
   * Opens a new file (0600, never an existing one) for `member`, of `size` bytes, after checking
   * the free space.
   */
  async create(member: string, size: number): Promise<{ file: string; handle: fs.FileHandle }> {
    const root = await this.ensureDir();
    await ensureFreeSpace(this.parent, size, `"${member}" from ${this.archive}`);
    const file = path.join(root, ...member.split('/'));
    if (!file.startsWith(root + path.sep)) {
      throw new MetadataError(this.archive, `member "${member}" would land outside ${root}`);
    }
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    return { file, handle: await fs.open(file, 'wx', 0o600) };
  }

  /**
   * The end of the read. The directory stays when the read succeeded and the run's cleanup
   * stack will remove it (the model names files in it); otherwise it is removed now.
   */
  async finish(ok: boolean): Promise<void> {
    if (this.dir === undefined) return;
    if (ok && this.registered) return;
    if (this.registered) await this.registered.runNow();
    else await fs.rm(this.dir, { recursive: true, force: true });
  }
}
