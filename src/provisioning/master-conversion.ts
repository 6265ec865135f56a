/**
 * A VMware image in the repository becomes a KVM master on the way: the v2v pipeline (the
 * Converter of issue 9, from the run's container) converts it into a work directory in the
 * datastore; its disk is then renamed onto the master's name (never over a file) and its domain
 * XML kept beside it. One conversion per master at a time (a lock on the node); a load that
 * waited finds the master made.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Converter, ConvertRequest } from '../convert/pipeline.js';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import { StorageError } from '../storage/errors.js';
import type { ImageFiles } from '../storage/repository.js';
import { takeNodeLock } from './node-lock.js';

/** What a conversion of a repository image needs. */
export interface MasterConversion {
  found: ImageFiles;
  /** The master to make: `<datastore>/<image>.qcow2`. */
  target: string;
  /** Where its domain XML goes: `<datastore>/<image>.xml`. */
  targetXml: string;
  image: string;
  domainType: 'kvm' | 'qemu';
}

/** Converts a VMware image of the repository into a master (see the module comment). */
export async function convertRepositoryImage(
  converter: Converter,
  node: Node,
  log: Logger,
  job: MasterConversion,
): Promise<void> {
  const dir = path.posix.dirname(job.target);
  const lock = await takeNodeLock(
    node,
    path.posix.join(dir, `.${path.posix.basename(job.target)}.convert.lock`),
    `conversion of ${job.found.entry.path}`,
    { waitMs: 6 * 3600_000 },
  );
  const work = path.posix.join(dir, `.${job.image}.convert-${randomBytes(6).toString('hex')}`);
  try {
    if (await node.stat(job.target)) return; // converted by the load we waited for
    await node.mkdir(work, { mode: 0o755 });
    const srcDir = path.posix.dirname(job.found.entry.path);
    const vmx = path.posix.join(srcDir, `${job.image}.vmx`);
    const hasVmx = (await node.stat(vmx))?.type === 'file';
    const req: ConvertRequest = {
      source: hasVmx ? [vmx] : [job.found.entry.path],
      input: hasVmx ? 'vmx' : 'disk',
      readerOptions: hasVmx ? {} : { name: job.image, diskFormat: 'vmdk' },
      outputDir: work,
      name: job.image,
      storage: 'copy',
      outputFormat: 'qcow2',
      virtio: true,
      domainType: job.domainType,
      networks: [],
      withFiles: {},
      dryRun: false,
      verifyBoot: false,
    };
    const result = await converter.convert(req, (e) => {
      if (e.type === 'stage' && e.state === 'end')
        log.info(`convert ${job.image}: ${e.stage} done`);
    });
    const disk = result.disks[0];
    if (!disk) throw new StorageError(job.found.entry.path, 'the conversion produced no disk');
    if (result.disks.length > 1) {
      log.warn(
        `${job.image}: only the first of ${result.disks.length} converted disks becomes the master`,
      );
    }
    if (result.xmlPath) await node.rename(result.xmlPath, job.targetXml);
    await node.rename(disk.path, job.target, { noReplace: true });
  } finally {
    await node.remove(work, { recursive: true }).catch(() => {});
    await lock.release();
  }
}
