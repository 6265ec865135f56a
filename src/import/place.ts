/**
 * Placing a converted disk on the target node: ONE streamed copy (the file read once here, its
 * bytes piped into `dd` on the node over the SSH channel, hashed on the way), then the node's
 * own `sha256sum` of what it wrote must match, then the temporary file is renamed into place
 * without replacing anything. A partial copy is a hidden `.NAME.tmp-*` sibling, removed by the
 * run's cleanup (or by the next import, after a crash).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Transform } from 'node:stream';
import type { Node } from '../node/node.js';
import { tempSibling } from '../node/temp-name.js';
import type { CleanupStack } from '../run/cleanup.js';
import { ImportError } from './errors.js';

export interface CopyProgress {
  bytes: number;
  total: number;
  percent: number;
}

export interface PlacedFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** Copies local file `from` to `to` on `node`, checksummed; `to` must not exist. */
export async function placeFile(
  node: Node,
  from: string,
  to: string,
  opts: { cleanup: CleanupStack; onProgress?: (p: CopyProgress) => void },
): Promise<PlacedFile> {
  const total = (await fs.promises.stat(from)).size;
  const tmp = tempSibling(to);
  const handle = opts.cleanup.defer(`remove partial copy ${tmp} on ${node.name}`, () =>
    node.remove(tmp),
  );
  const hash = createHash('sha256');
  let bytes = 0;
  let lastPercent = -1;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      const percent = total ? Math.floor((bytes / total) * 100) : 100;
      if (percent !== lastPercent) {
        lastPercent = percent;
        opts.onProgress?.({ bytes, total, percent });
      }
      done(null, chunk);
    },
  });
  const input = fs.createReadStream(from, { highWaterMark: 1 << 20 }).pipe(meter);
  try {
    await node.run(['dd', `of=${tmp}`, 'bs=1M', 'status=none'], { stdin: input });
  } finally {
    input.destroy();
  }
  const local = hash.digest('hex');
  if (bytes !== total) {
    throw new ImportError(
      `${from}: read ${bytes} bytes, expected ${total} (changed while copied?)`,
    );
  }
  const remote = (await node.run(['sha256sum', '--', tmp])).stdout.trim().split(/\s+/)[0];
  if (remote !== local) {
    throw new ImportError(
      `copy of ${from} to ${to} on ${node.name}: checksum mismatch (sent sha256 ${local}, the node has ${remote})`,
      { hint: 'the transfer or the node storage corrupted data: check the node, then retry' },
    );
  }
  await node.rename(tmp, to, { noReplace: true });
  handle.dismiss();
  if (lastPercent !== 100) opts.onProgress?.({ bytes, total, percent: 100 });
  return { path: to, bytes, sha256: local };
}
