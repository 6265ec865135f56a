/**
 * The last step of every reader: the model is checked against sane bounds, so an absurd number
 * in a source (memory 10^30, -1 vCPUs) is an error naming the file, never a guest definition.
 */
import { z } from 'zod';
import { MetadataError } from '../errors.js';
import {
  DISK_BUSES,
  DISK_CONTROLLERS,
  DISK_FORMATS,
  FIRMWARES,
  NETWORK_KINDS,
  NIC_MODELS,
  READER_KINDS,
  SOURCE_HYPERVISORS,
  type SourceGuest,
  VIDEO_MODELS,
} from './model.js';

/** Largest memory a guest may declare: 16 TiB (above any libvirt/QEMU x86 limit in use). */
export const MAX_MEMORY_BYTES = 16 * 1024 ** 4;
/** Most vCPUs a guest may declare (QEMU's q35 limit in Debian 12 is 288; libvirt 4096). */
export const MAX_VCPUS = 4096;

const count = (max: number) => z.number().int().min(1).max(max);

const diskSchema = z.object({
  path: z.string().min(1),
  backingChain: z.array(z.string().min(1)),
  format: z.enum(DISK_FORMATS),
  bus: z.enum(DISK_BUSES),
  controller: z.enum(DISK_CONTROLLERS),
  slot: z.string().min(1),
  controllerIndex: z.number().int().min(0).max(1024).optional(),
  unit: z.number().int().min(0).max(65535).optional(),
  bootOrder: z.number().int().min(1).max(1024).optional(),
  readOnly: z.boolean(),
  capacityBytes: z
    .number()
    .int()
    .min(0)
    .max(2 ** 53)
    .optional(),
  compression: z.literal('gzip').optional(),
  inArchive: z
    .object({
      archive: z.string(),
      member: z.string(),
      offset: z.number().int().min(0).optional(),
      size: z.number().int().min(0),
    })
    .optional(),
});

export const sourceGuestSchema = z.object({
  name: z.string().min(1).max(1024),
  hypervisor: z.enum(SOURCE_HYPERVISORS),
  firmware: z.enum(FIRMWARES),
  memoryBytes: z
    .number()
    .int()
    .min(1024 * 1024, 'memory below 1 MiB')
    .max(MAX_MEMORY_BYTES, 'memory above 16 TiB'),
  vcpus: count(MAX_VCPUS),
  cpuTopology: z
    .object({ sockets: count(MAX_VCPUS), cores: count(MAX_VCPUS), threads: count(MAX_VCPUS) })
    .optional(),
  osHint: z.string().optional(),
  uuid: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    .optional(),
  disks: z.array(diskSchema),
  cdroms: z.array(
    z.object({ bus: z.enum(DISK_BUSES), slot: z.string().min(1), path: z.string().optional() }),
  ),
  nics: z.array(
    z.object({
      mac: z
        .string()
        .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
        .optional(),
      model: z.enum(NIC_MODELS),
      network: z.string().optional(),
      networkKind: z.enum(NETWORK_KINDS),
    }),
  ),
  video: z
    .object({
      model: z.enum(VIDEO_MODELS),
      vramBytes: z
        .number()
        .int()
        .min(0)
        .max(2 ** 40)
        .optional(),
    })
    .optional(),
  sound: z.object({ model: z.string() }).optional(),
  xenPv: z
    .object({
      bootloader: z.string().optional(),
      kernel: z.string().optional(),
      initrd: z.string().optional(),
      cmdline: z.string().optional(),
      console: z.string().optional(),
    })
    .optional(),
  notes: z.array(z.string()),
  origin: z.object({ kind: z.enum(READER_KINDS), source: z.string() }),
});

/** Returns the guest if it is sane; otherwise throws a MetadataError naming `file`. */
export function validateGuest(guest: SourceGuest, file: string): SourceGuest {
  const r = sourceGuestSchema.safeParse(guest);
  if (r.success) return guest;
  const problems = r.error.issues.map((i) => {
    const at = i.path.join('.');
    const value = i.path.reduce<unknown>(
      (o, k) =>
        o && typeof o === 'object'
          ? (o as Record<string | number, unknown>)[k as string]
          : undefined,
      guest,
    );
    return `${at}: ${i.message}${value === undefined ? '' : ` (got ${JSON.stringify(value)})`}`;
  });
  throw new MetadataError(file, `invalid guest description: ${problems.join('; ')}`);
}

/** Normalizes a MAC to lower-case colon form, or undefined when it is not a MAC. */
export function normalizeMac(mac: string | undefined): string | undefined {
  if (!mac) return undefined;
  const hex = mac.trim().toLowerCase().replace(/[-:.]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)?.join(':');
}

/** Normalizes a UUID (VMware's `56 4d 12 ...-... ` byte form too), or undefined. */
export function normalizeUuid(uuid: string | undefined): string | undefined {
  if (!uuid) return undefined;
  const hex = uuid.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 32) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
