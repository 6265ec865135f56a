import { LocalNode } from '../../src/node/local-node.js';
import type { RunOptions, RunResult } from '../../src/node/node.js';

/** A local node that records the commands it runs and the ranges it reads, and refuses every write. */
export class WatchedNode extends LocalNode {
  readonly commands: string[][] = [];
  readonly writes: string[] = [];
  /** Every bounded read: [path, offset, length]. */
  readonly rangeReads: Array<[string, number, number]> = [];
  override async readFileRange(p: string, offset: number, length: number): Promise<Buffer> {
    this.rangeReads.push([p, offset, length]);
    return super.readFileRange(p, offset, length);
  }
  override async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    this.commands.push([...argv]);
    return super.run(argv, options);
  }
  private refuse(p: string): never {
    this.writes.push(p);
    throw new Error(`the reader tried to write ${p}`);
  }
  override async writeFileAtomic(p: string): Promise<void> {
    this.refuse(p);
  }
  override async rename(from: string): Promise<void> {
    this.refuse(from);
  }
  override async remove(p: string): Promise<void> {
    this.refuse(p);
  }
  override async mkdir(p: string): Promise<void> {
    this.refuse(p);
  }
}
