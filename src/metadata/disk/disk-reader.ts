/**
 * The command-line reader: bare disk images plus --name, --memory, --vcpus and --network.
 * The format comes from --disk-format or the file's extension, never from probing the image
 * (a raw image can pose as qcow2).
 */
import * as path from 'node:path';
import { MetadataError, UsageError } from '../../errors.js';
import { parseSize } from '../../util/size.js';
import type { DiskFormat, SourceGuest } from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptionSpec, ReaderOptions } from '../reader.js';
import { validateGuest } from '../validate.js';

const FORMAT_BY_EXTENSION: Record<string, DiskFormat> = {
  '.qcow2': 'qcow2',
  '.qcow': 'qcow2',
  '.vmdk': 'vmdk',
  '.img': 'raw',
  '.raw': 'raw',
  '.vhd': 'vhd',
  '.vpc': 'vhd',
  '.vhdx': 'vhdx',
  '.vdi': 'vdi',
};

export const DISK_EXTENSIONS = Object.keys(FORMAT_BY_EXTENSION);

const FORMATS: readonly DiskFormat[] = ['qcow2', 'vmdk', 'raw', 'vhd', 'vhdx', 'vdi'];

export const DEFAULT_DISK_GUEST = { memoryBytes: 1024 ** 3, vcpus: 1 } as const;

function formatOf(file: string, declared: string | undefined): DiskFormat {
  if (declared) return declared as DiskFormat;
  const f = FORMAT_BY_EXTENSION[path.extname(file).toLowerCase()];
  if (!f) {
    throw new UsageError(`disk '${file}': cannot tell its format from the name`, {
      hint: `give --disk-format ${FORMATS.join('|')}`,
    });
  }
  return f;
}

/** `--vcpus RAW`: a whole number of at least 1; the error quotes RAW as typed. */
export function parseVcpus(raw: string, flag = 'vcpus'): number {
  const s = raw.trim();
  const n = /^[0-9]+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--${flag} '${raw}': expected a whole number of at least 1`, {
      hint: `e.g. --${flag} 2`,
    });
  }
  return n;
}

export class DiskReader implements MetadataReader {
  readonly kind = 'disk' as const;
  readonly optionSpecs: readonly ReaderOptionSpec[] = [
    {
      flag: 'name',
      key: 'name',
      type: 'string',
      describe: "guest name (default: the first disk's name)",
    },
    {
      flag: 'memory',
      key: 'memoryBytes',
      type: 'string',
      describe: 'memory, e.g. 2G (default 1G)',
      parse: (raw, flag) => parseSize(raw, `--${flag}`),
    },
    {
      flag: 'vcpus',
      key: 'vcpus',
      // A string, so that a usage error quotes what was typed (yargs turns `two` into NaN).
      type: 'string',
      describe: 'vCPUs (default 1)',
      parse: parseVcpus,
    },
    {
      flag: 'network',
      key: 'networks',
      type: 'array',
      describe: 'a network name, one NIC each (repeatable)',
    },
    {
      flag: 'disk-format',
      key: 'diskFormat',
      type: 'string',
      describe: 'format of the images when the extension does not say',
    },
  ];

  check(source: string[], options: ReaderOptions): void {
    if (source.length === 0) throw new UsageError('-i disk: give at least one disk image');
    if (options.diskFormat && !FORMATS.includes(options.diskFormat as DiskFormat)) {
      throw new UsageError(`--disk-format '${options.diskFormat}': unknown format`, {
        hint: `one of ${FORMATS.join(', ')}`,
      });
    }
    for (const file of source) formatOf(file, options.diskFormat);
    if (options.vcpus !== undefined && (!Number.isInteger(options.vcpus) || options.vcpus < 1)) {
      throw new UsageError(`--vcpus '${options.vcpus}': expected a whole number of at least 1`);
    }
    if (options.name !== undefined && options.name.trim() === '') {
      throw new UsageError('--name: the guest name cannot be empty');
    }
  }

  async read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, options);
    const first = source[0] ?? '';
    const disks = [];
    for (const [i, file] of source.entries()) {
      const abs = path.resolve(file);
      const st = await ctx.node.stat(abs);
      if (st?.type !== 'file') {
        throw new MetadataError(
          abs,
          st ? 'not a regular file' : `no such disk image on ${ctx.node.name}`,
        );
      }
      disks.push({
        path: abs,
        backingChain: [],
        format: formatOf(file, options.diskFormat),
        bus: 'unknown' as const,
        controller: 'unknown' as const,
        slot: `disk${i}`,
        ...(i === 0 ? { bootOrder: 1 } : {}),
        readOnly: false,
      });
    }
    const guest: SourceGuest = {
      name: options.name ?? path.basename(first, path.extname(first)),
      hypervisor: 'unknown',
      firmware: 'unknown',
      memoryBytes: options.memoryBytes ?? DEFAULT_DISK_GUEST.memoryBytes,
      vcpus: options.vcpus ?? DEFAULT_DISK_GUEST.vcpus,
      disks,
      cdroms: [],
      nics: (options.networks ?? []).map((network) => ({
        model: 'unknown' as const,
        network,
        networkKind: 'network' as const,
      })),
      notes: [],
      origin: { kind: 'disk', source: source.map((s) => path.resolve(s)).join(' ') },
    };
    return validateGuest(guest, first);
  }
}
