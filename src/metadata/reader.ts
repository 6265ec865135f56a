/**
 * The MetadataReader interface (the v2v design's MetadataReader): each source kind is one file
 * implementing it; `readerFor` (registry.ts) picks one from the source.
 *
 * Two passes, as in the design: `check` validates the reader's own options and the source's
 * name before anything is read (so a typo fails at once), then `read` reads the metadata and
 * returns the neutral model. No reader ever writes next to its source.
 */
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import type { CleanupStack } from '../run/cleanup.js';
import type { ReaderKind, SourceGuest } from './model.js';

/** Options a reader may take; every reader ignores the ones that are not its own. */
export interface ReaderOptions {
  /** libvirt URI for the live libvirt reader (`--connect`). */
  connect?: string | undefined;
  /** Command-line reader: guest name (`--name`). */
  name?: string | undefined;
  /** Command-line reader: memory in bytes (`--memory`). */
  memoryBytes?: number | undefined;
  /** Command-line reader: vCPUs (`--vcpus`). */
  vcpus?: number | undefined;
  /** Command-line reader: network names, one NIC each (`--network`). */
  networks?: string[] | undefined;
  /** Command-line reader: the disks' format when not guessable (`--disk-format`). */
  diskFormat?: string | undefined;
  /**
   * OVA reader (`--tmp-dir`): where the members that must be files of their own (a snapshot
   * chain's disks, ISO images) are extracted; default /var/tmp, not the often RAM-backed
   * os.tmpdir(). Disks themselves are never extracted by a reader.
   */
  tmpDir?: string | undefined;
}

/** What a reader works with. */
export interface ReaderContext {
  /** The machine the source files (or the libvirt domain) are on. */
  node: Node;
  log: Logger;
  /** A private temporary directory, removed after the run; the only place a reader may write. */
  tmpDir: string;
  /** The run's AbortSignal: long work that runs no command (decompression, hashing) checks it. */
  signal?: AbortSignal | undefined;
  /** The run's cleanup stack: what a reader makes that outlives `read` is registered there. */
  cleanup?: CleanupStack | undefined;
}

/**
 * One command-line option a reader declares (the design's `get command line options`). The CLI
 * offers the union of every reader's options and refuses one given for a reader that did not
 * declare it.
 */
export interface ReaderOptionSpec {
  /** The flag without dashes, e.g. `memory` for `--memory`. */
  flag: string;
  /** A one-letter alias, e.g. `c` for `--connect` (the same letter on every command). */
  alias?: string | undefined;
  /** Where the parsed value goes. */
  key: keyof ReaderOptions;
  type: 'string' | 'number' | 'array';
  describe: string;
  /** Turns the raw value into the option's value; throws a UsageError naming the flag. */
  parse?: (raw: string, flag: string) => unknown;
}

export interface MetadataReader {
  readonly kind: ReaderKind;
  /** The options this reader takes; none when absent. */
  readonly optionSpecs?: readonly ReaderOptionSpec[];
  /**
   * First pass: validate options and the source string; throws a UsageError naming the option
   * or the source. Reads nothing.
   */
  check(source: string[], options: ReaderOptions): void;
  /**
   * Second pass: read the source's metadata into the neutral model.
   * @throws MetadataError naming the file (and line where known) for broken or hostile input.
   */
  read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest>;
}
