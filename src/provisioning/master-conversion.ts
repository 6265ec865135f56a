/**
 * Repository images that need the v2v pipeline (the Converter of issue 9, from the run's
 * container) on their way to a KVM master:
 * - a VMware image (`vmware-image`): converted into a work directory in the datastore; its
 *   disks are then renamed onto the master's names (never over a file: `<image>.qcow2`, then
 *   `<image>-disk2.qcow2`, ...) and its domain XML kept beside them. One conversion per master
 *   at a time (a lock on the node); a load that waited finds the master made.
 * - a Windows image (`windows-copy`): the master cache's fresh copy, still under its temporary
 *   name and the cache's lock, converted in place: VMware's services off, then the boot
 *   drivers of the target (IDE's CriticalDeviceDatabase, or virtio when the VM host has the
 *   virtio-win drivers). A repository image that carries a conversion record (a capture on
 *   KVM) is not converted again.
 * Each leaves a conversion record beside the master (conversion-record.ts): the devices the
 * conversion chose, which the load's domain follows.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Converter, ConvertRequest, ConvertResult } from '../convert/pipeline.js';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import { StorageError } from '../storage/errors.js';
import type { ImageRef } from '../storage/image-format.js';
import type { ImageFiles } from '../storage/repository.js';
import {
  type ConversionRecord,
  conversionRecordIn,
  readConversionRecord,
  writeConversionRecord,
} from './conversion-record.js';
import { recordedHardware } from './domain-xml.js';
import { takeNodeLock } from './node-lock.js';

/** A VMware image of the repository → master (+ extra disks, domain XML, record). */
export interface VmwareImageConversion {
  kind: 'vmware-image';
  found: ImageFiles;
  /** The master to make: `<datastore>/<image>.qcow2`. */
  target: string;
  /** Where the master's disk `n` (n ≥ 1) goes: `<datastore>/<image>-disk<n+1>.qcow2`. */
  extraTarget: (n: number) => string;
  /** Where its domain XML goes: `<datastore>/<image>.xml`. */
  targetXml: string;
  /** Where its conversion record goes: `<datastore>/<image>.conversion.json`. */
  targetRecord: string;
  image: string;
  domainType: 'kvm' | 'qemu';
  /** The virtio-win drivers on the node (a Windows guest gets virtio with them). */
  virtioWin?: string | undefined;
}

/** The fresh copy of a Windows image, converted in place before it becomes the master. */
export interface WindowsCopyConversion {
  kind: 'windows-copy';
  /** The copy, under its temporary name in the datastore. */
  copy: ImageRef;
  /** The repository image it was copied from. */
  found: ImageFiles;
  /** Where its conversion record goes: `<datastore>/<image>.conversion.json`. */
  targetRecord: string;
  image: string;
  domainType: 'kvm' | 'qemu';
  virtioWin?: string | undefined;
}

export type MasterConversion = VmwareImageConversion | WindowsCopyConversion;

/** What a conversion did: the record, and whether this call converted (false: already was). */
export interface MasterConversionResult {
  converted: boolean;
  record: ConversionRecord | undefined;
}

/** A name the pipeline takes (`--name`: at most 64 characters). */
function pipelineName(image: string): string {
  return image.slice(0, 64);
}

function recordOf(
  how: ConversionRecord['how'],
  image: string,
  result: ConvertResult,
): ConversionRecord {
  const hw = recordedHardware(result.xml, `the converted domain XML of ${image}`);
  return {
    image,
    how,
    at: new Date().toISOString(),
    modules: {
      ...(result.modules.hvsource ? { hvsource: result.modules.hvsource } : {}),
      guestos: result.modules.guestos,
      hvtarget: result.modules.hvtarget,
    },
    devices: {
      ...(hw.diskBus ? { diskBus: hw.diskBus } : {}),
      ...(hw.nicModel ? { nicModel: hw.nicModel } : {}),
      ...(hw.machine ? { machine: hw.machine } : {}),
    },
    notes: result.notes ?? [],
    warnings: result.warnings,
  };
}

/** Runs one conversion of a master (see the module comment). */
export async function convertRepositoryImage(
  converter: Converter,
  node: Node,
  log: Logger,
  job: MasterConversion,
): Promise<MasterConversionResult> {
  return job.kind === 'vmware-image'
    ? convertVmwareImage(converter, node, log, job)
    : convertWindowsCopy(converter, node, log, job);
}

async function convertVmwareImage(
  converter: Converter,
  node: Node,
  log: Logger,
  job: VmwareImageConversion,
): Promise<MasterConversionResult> {
  const dir = path.posix.dirname(job.target);
  const lock = await takeNodeLock(
    node,
    path.posix.join(dir, `.${path.posix.basename(job.target)}.convert.lock`),
    `conversion of ${job.found.entry.path}`,
    { waitMs: 6 * 3600_000 },
  );
  const work = path.posix.join(dir, `.${job.image}.convert-${randomBytes(6).toString('hex')}`);
  try {
    // converted by the load we waited for
    if (await node.stat(job.target)) {
      return { converted: false, record: await readConversionRecord(node, job.targetRecord) };
    }
    await node.mkdir(work, { mode: 0o755 });
    const srcDir = path.posix.dirname(job.found.entry.path);
    const vmx = path.posix.join(srcDir, `${job.image}.vmx`);
    const hasVmx = (await node.stat(vmx))?.type === 'file';
    const req: ConvertRequest = {
      source: hasVmx ? [vmx] : [job.found.entry.path],
      input: hasVmx ? 'vmx' : 'disk',
      // a bare disk gets one NIC, so that the converted XML says which model the guest takes
      readerOptions: hasVmx ? {} : { name: job.image, diskFormat: 'vmdk', networks: ['default'] },
      sourceHypervisor: 'vmware',
      outputDir: work,
      name: pipelineName(job.image),
      storage: 'copy',
      outputFormat: 'qcow2',
      virtio: true,
      virtioWin: job.virtioWin,
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
    const first = result.disks[0];
    if (!first) throw new StorageError(job.found.entry.path, 'the conversion produced no disk');
    const record = recordOf('vmware-image', job.image, result);
    await writeConversionRecord(node, job.targetRecord, record);
    if (result.xmlPath) await node.rename(result.xmlPath, job.targetXml);
    // the extra disks first: the master's name last, once the image is whole
    for (const [n, disk] of result.disks.entries()) {
      if (n > 0) await node.rename(disk.path, job.extraTarget(n), { noReplace: true });
    }
    await node.rename(first.path, job.target, { noReplace: true });
    return { converted: true, record };
  } finally {
    await node.remove(work, { recursive: true }).catch(() => {});
    await lock.release();
  }
}

async function convertWindowsCopy(
  converter: Converter,
  node: Node,
  log: Logger,
  job: WindowsCopyConversion,
): Promise<MasterConversionResult> {
  // a repository image with a conversion record was converted before (a capture on KVM)
  const repoRecord = conversionRecordIn(path.posix.dirname(job.found.entry.path), job.image);
  const had = await readConversionRecord(node, repoRecord);
  if (had) {
    log.info(`${job.image}: the repository image is a KVM image (${had.how}); not converted`);
    await writeConversionRecord(node, job.targetRecord, had);
    return { converted: false, record: had };
  }
  const dir = path.posix.dirname(job.copy.path);
  const work = path.posix.join(dir, `.${job.image}.windows-${randomBytes(6).toString('hex')}`);
  await node.mkdir(work, { mode: 0o755 });
  try {
    log.info(`${job.image}: the Windows registry changes on the fresh copy ${job.copy.path}`);
    const result = await converter.convert(
      {
        source: [job.copy.path],
        input: 'disk',
        // one NIC, so that the converted XML says which model the guest's drivers allow
        readerOptions: { name: job.image, diskFormat: job.copy.format, networks: ['default'] },
        // VCL's Windows images come from VMware: its services go, whatever is found of them
        sourceHypervisor: 'vmware',
        outputDir: work,
        name: pipelineName(job.image),
        storage: 'in-place',
        outputFormat: 'qcow2',
        virtio: true,
        virtioWin: job.virtioWin,
        domainType: job.domainType,
        networks: [],
        withFiles: {},
        dryRun: false,
        verifyBoot: false,
      },
      (e) => {
        if (e.type === 'stage' && e.state === 'end')
          log.info(`convert ${job.image}: ${e.stage} done`);
      },
    );
    if (result.guest.distro !== 'windows') {
      throw new StorageError(
        job.found.entry.path,
        `image.osType is windows but the image holds ${result.guest.productName} (${result.guest.distro})`,
        { hint: "correct the image's OS type in VCL" },
      );
    }
    const record = recordOf('windows-registry', job.image, result);
    await writeConversionRecord(node, job.targetRecord, record);
    return { converted: true, record };
  } finally {
    await node.remove(work, { recursive: true }).catch(() => {});
  }
}
