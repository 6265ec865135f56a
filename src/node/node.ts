/**
 * A node is the machine that holds images and runs libvirt: the local machine, or a remote
 * one reached over SSH. Everything above this layer talks to a {@link Node} and does not care
 * which kind it is.
 */
import type { Readable } from 'node:stream';
import type { CommandOutcome } from '../errors.js';

/** Options of one command run. */
export interface RunOptions {
  /** Data written to the command's standard input, then closed. Default: empty stdin. */
  stdin?: string | Uint8Array | Readable;
  /** Kill the command (and its process group) after this many milliseconds. */
  timeoutMs?: number;
  /** Kill the command when this signal aborts. */
  signal?: AbortSignal;
  /** Extra environment variables for the command (added to the node's environment). */
  env?: Record<string, string>;
  /** Called with each chunk of stdout as it arrives (e.g. for progress). */
  onStdout?: (chunk: Buffer) => void;
  /** Called with each chunk of stderr as it arrives. */
  onStderr?: (chunk: Buffer) => void;
  /** Keep at most this many bytes of each stream in the result (default 256 MiB). */
  maxBuffer?: number;
  /**
   * When false, a non-zero exit is returned as a result instead of thrown as a
   * {@link CommandError}. A timeout, an abort or a lost connection always throw.
   * Default: true.
   */
  reject?: boolean;
}

/** What a command did. Same shape as a {@link CommandError}. */
export interface RunResult extends CommandOutcome {
  /** stdout as raw bytes (for binary output). */
  stdoutBytes: Buffer;
}

/** One entry of a directory listing. */
export interface DirEntry {
  name: string;
  type: FileType;
}

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

/** What {@link Node.stat} reports. Does not follow a final symlink. */
export interface FileStat {
  type: FileType;
  /** Size in bytes. */
  size: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/** Runs commands on a machine. */
export interface CommandRunner {
  /** `local`, or `ssh://user@host:port`. Used in every message about this node. */
  readonly name: string;
  /**
   * Runs `argv[0]` with arguments `argv[1..]`. No shell is involved on a local node; on a
   * remote node the argv is quoted by exactly one function and arrives byte for byte.
   * @throws CommandError on non-zero exit (unless `reject: false`), timeout or abort;
   *   CommandNotFoundError when the program does not exist;
   *   NodeUnreachableError / ConnectionLostError when the node cannot be reached.
   */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
}

/** Options of {@link FileOps.rename}. */
export interface RenameOptions {
  /** Fail when the target exists instead of replacing it. Default false. */
  noReplace?: boolean;
}

/** File operations on a machine. Paths are absolute paths on that machine. */
export interface FileOps {
  /** Reads a whole file. */
  readFile(path: string): Promise<Buffer>;
  /**
   * Reads at most `length` bytes from byte `offset` (fewer at the end of the file). Follows a
   * final symlink, as open(2) does. For headers of large images and descriptors.
   */
  readFileRange(path: string, offset: number, length: number): Promise<Buffer>;
  /** Writes a file atomically: a temporary file in the same directory, then a rename. */
  writeFileAtomic(
    path: string,
    data: string | Uint8Array,
    options?: { mode?: number },
  ): Promise<void>;
  /** Information about a path, or undefined when it does not exist. */
  stat(path: string): Promise<FileStat | undefined>;
  /** The entries of a directory, sorted by name. */
  list(dir: string): Promise<DirEntry[]>;
  /**
   * Renames, replacing `to` if it exists (POSIX rename semantics); with `noReplace`, fails
   * (atomically, whatever runs meanwhile) when `to` exists, and leaves both untouched: for
   * outputs moved into place, which must never replace a file this run did not make.
   * @throws NodeFileError (reason `EEXIST`) when `noReplace` and `to` exists
   */
  rename(from: string, to: string, options?: RenameOptions): Promise<void>;
  /** Removes a file, or a directory with `recursive`. A missing path is not an error. */
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Creates a directory (and its parents with `recursive`). */
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<void>;
  /** Copies a file of this machine (the one running v2v-load) to the node, atomically. */
  upload(localPath: string, nodePath: string): Promise<void>;
  /** Copies a file of the node to this machine, atomically. */
  download(nodePath: string, localPath: string): Promise<void>;
}

/** A machine that runs commands and holds files. */
export interface Node extends CommandRunner, FileOps {
  /** True for the machine v2v-load itself runs on. */
  readonly isLocal: boolean;
  /** Releases connections. The node reconnects if used again. */
  close(): Promise<void>;
}
