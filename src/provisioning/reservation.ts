/**
 * The reservation data document VCL core hands a provisioning module (as JSON): what to load
 * on which computer of which VM host. Validated with zod; every error names the field
 * (`vmhost.datastorePath: ...`).
 */
import { z } from 'zod';
import { V2vError } from '../errors.js';
import type { NodeSpec } from '../node/node-spec.js';
import { parseSshUrl } from '../node/node-spec.js';

/** The reservation document is wrong (a field missing, of the wrong type or unsafe). */
export class ReservationError extends V2vError {
  override readonly code = 'RESERVATION_INVALID';
}

/** A file or libvirt object name: letters, digits, `_ . + -`, no leading dot, no slash. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
const safeName = (what: string) =>
  z
    .string()
    .min(1)
    .max(200)
    .regex(SAFE_NAME, `${what}: letters, digits, _ . + - only, not starting with . or -`)
    .refine((s) => !s.includes('..'), `${what}: no ".."`);
const absPath = z
  .string()
  .regex(/^\/[^\0]*$/, 'an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'no ".." component');
const mac = z
  .string()
  .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'a MAC address like 52:54:00:00:04:22')
  .transform((m) => m.toLowerCase());
const id = z.number().int().nonnegative();
const network = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'a libvirt network name')
  .max(64);

export const ReservationSchema = z.strictObject({
  reservation: z.strictObject({ id, requestId: id }),
  computer: z.strictObject({
    id,
    shortName: safeName('a computer name'),
    eth0Mac: mac.nullish(),
    eth1Mac: mac.nullish(),
  }),
  image: z.strictObject({
    id,
    name: safeName('an image name'),
    prettyName: z.string().min(1).max(200),
    revision: id,
    osType: z.enum(['linux', 'windows', 'unix', 'osx', 'other']).default('linux'),
    /** VCL's OS name (e.g. vmwarelinux): the first part of a captured image's name. */
    osName: safeName('an OS name').optional(),
    minRamMiB: z
      .number()
      .int()
      .min(16)
      .max(4 * 1024 * 1024),
    minCpus: z.number().int().min(1).max(512),
    diskFormat: z.enum(['qcow2']).default('qcow2'),
  }),
  vmhost: z.strictObject({
    node: z.string().min(1),
    identity: absPath.nullish(),
    knownHosts: absPath.nullish(),
    libvirtUri: z
      .string()
      .regex(/^[a-z][a-z0-9+]*:\/\/[^\s]*$/, 'a libvirt URI like qemu:///system')
      .default('qemu:///system'),
    datastorePath: absPath,
    vmPath: absPath,
    repositoryPath: absPath.nullish(),
    virtualSwitch0: network.nullish(),
    virtualSwitch1: network.nullish(),
    domainType: z.enum(['kvm', 'qemu']).nullish(),
    /**
     * The virtio-win drivers on the VM host (their directory or ISO): a Windows master made by
     * a load gets virtio disks and NICs with them, IDE and e1000 without.
     */
    virtioWinPath: absPath.nullish(),
  }),
  /** How load decides that the guest is up (post_load). */
  postLoad: z
    .strictObject({
      /** A regular expression matched against the serial console log. Default: a login prompt. */
      pattern: z
        .string()
        .min(1)
        .max(500)
        .refine((p) => {
          try {
            new RegExp(p, 'm');
            return true;
          } catch {
            return false;
          }
        }, 'a regular expression (JavaScript syntax)')
        .optional(),
      timeoutSeconds: z.number().positive().max(86_400).default(600),
      /** false: return once the domain runs, without waiting for the pattern. */
      wait: z.boolean().default(true),
    })
    .default({ timeoutSeconds: 600, wait: true }),
  /** Arguments of the subroutines that take some (domain name, snapshot, image name). */
  args: z
    .strictObject({
      domainName: z.string().min(1).max(200).optional(),
      snapshotName: z.string().min(1).max(200).optional(),
      description: z.string().max(1000).optional(),
      imageName: safeName('an image name').optional(),
      /** capture: copy the new master to the repository with qcow2 compat 0.10 (old hosts). */
      compat: z.enum(['0.10', '1.1']).optional(),
      /** capture: seconds a graceful shutdown may take before the domain is destroyed. */
      shutdownTimeoutSeconds: z.number().positive().max(3600).optional(),
      /** load: seconds to wait for another load of the same computer (default 30). */
      lockWaitSeconds: z.number().nonnegative().max(86_400).optional(),
    })
    .default({}),
});

export type Reservation = z.output<typeof ReservationSchema>;
/** The document as written (optional fields may be absent). */
export type ReservationInput = z.input<typeof ReservationSchema>;

function fieldOf(issue: z.core.$ZodIssue): string {
  return issue.path.length ? issue.path.map(String).join('.') : '(document)';
}

/**
 * Validates a parsed document. `source` names it in messages (a file, or `stdin`).
 * @throws ReservationError naming every wrong field
 */
export function parseReservation(doc: unknown, source = 'reservation document'): Reservation {
  const r = ReservationSchema.safeParse(doc);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${fieldOf(i)}: ${i.message}`);
    throw new ReservationError(`${source}: ${lines.join('; ')}`, {
      hint: 'see "Reservation document" in README.md for every field',
    });
  }
  const res = r.data;
  nodeSpecOf(res, source); // the node URL is checked here too
  return res;
}

/** Parses JSON text, then {@link parseReservation}. */
export function parseReservationJson(text: string, source = 'reservation document'): Reservation {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ReservationError(`${source}: not JSON: ${(e as Error).message}`, {
      hint: 'give the reservation document as one JSON object',
    });
  }
  return parseReservation(doc, source);
}

/** How to reach the VM host of a reservation. */
export function nodeSpecOf(res: Reservation, source = 'reservation document'): NodeSpec {
  const h = res.vmhost;
  if (h.node === 'local') return {};
  try {
    return {
      ssh: parseSshUrl(h.node, 'vmhost.node'),
      identity: h.identity ?? undefined,
      knownHosts: h.knownHosts ?? undefined,
    };
  } catch (e) {
    throw new ReservationError(`${source}: ${(e as Error).message}`, {
      hint: 'vmhost.node is "local" or "ssh://user@host:port"',
      cause: e,
    });
  }
}
