/**
 * The conversion record of a master, `<image>.conversion.json` beside it: how the image became
 * a KVM master (the v2v conversion of a VMware image, the Windows registry changes on a fresh
 * copy, or a capture of a domain that ran on KVM), and the devices the conversion chose (the
 * load's domain follows them: IDE and e1000 for a Windows guest without virtio drivers).
 * Capture writes one beside the new master and in the repository: a later fetch of that image
 * is not converted again.
 */
import * as path from 'node:path';
import { z } from 'zod';
import type { Node } from '../node/node.js';
import { StorageError } from '../storage/errors.js';

const ConversionRecordSchema = z.object({
  image: z.string(),
  how: z.enum(['vmware-image', 'windows-registry', 'captured']),
  at: z.string(),
  modules: z
    .object({ hvsource: z.string().optional(), guestos: z.string(), hvtarget: z.string() })
    .optional(),
  devices: z
    .object({
      diskBus: z.enum(['virtio', 'ide', 'sata', 'scsi']).optional(),
      nicModel: z.enum(['virtio', 'e1000', 'rtl8139']).optional(),
      machine: z.enum(['q35', 'pc']).optional(),
    })
    .optional(),
  notes: z.array(z.string()).optional(),
  warnings: z.array(z.string()).optional(),
  /** capture: the domain the image was captured from. */
  capturedFrom: z.string().optional(),
});

export type ConversionRecord = z.infer<typeof ConversionRecordSchema>;

/** `<dir>/<image>.conversion.json` */
export function conversionRecordIn(dir: string, image: string): string {
  return path.posix.join(dir, `${image}.conversion.json`);
}

/**
 * The record in `file`; undefined when there is none.
 * @throws StorageError when the file is there but is not a conversion record
 */
export async function readConversionRecord(
  node: Node,
  file: string,
): Promise<ConversionRecord | undefined> {
  if (!(await node.stat(file))) return undefined;
  const text = (await node.readFile(file)).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new StorageError(file, `not JSON: ${(e as Error).message}`, {
      hint: 'remove the file (the image is then treated as not converted)',
    });
  }
  const r = ConversionRecordSchema.safeParse(doc);
  if (!r.success) {
    throw new StorageError(
      file,
      `not a conversion record: ${r.error.issues.map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`).join('; ')}`,
      { hint: 'remove the file (the image is then treated as not converted)' },
    );
  }
  return r.data;
}

/** Writes a record (atomically, 0644). */
export async function writeConversionRecord(
  node: Node,
  file: string,
  rec: ConversionRecord,
): Promise<void> {
  await node.writeFileAtomic(file, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o644 });
}
