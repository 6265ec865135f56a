/**
 * Golden files of the metadata readers: for a corpus input `NAME.EXT`, the printer's text is
 * `NAME.txt` and the JSON is `NAME.json`, beside it. A missing golden file is written on a
 * local run (review it before committing); under CI a mismatch or a missing file fails.
 */
import * as path from 'node:path';
import { expect } from 'vitest';
import type { SourceGuest } from '../../src/metadata/model.js';
import { formatGuest, guestToJson } from '../../src/metadata/printer.js';

/** Replaces `root` in every string of the guest with `<CORPUS>`, so goldens hold no temp paths. */
export function relativize(guest: SourceGuest, root: string): SourceGuest {
  return JSON.parse(JSON.stringify(guest).split(root).join('<CORPUS>')) as SourceGuest;
}

export async function expectGolden(guest: SourceGuest, input: string, root: string): Promise<void> {
  const base = input.slice(0, input.length - path.extname(input).length);
  const g = relativize(guest, root);
  await expect(formatGuest(g)).toMatchFileSnapshot(`${base}.txt`);
  await expect(guestToJson(g)).toMatchFileSnapshot(`${base}.json`);
}
