/**
 * The batch manifest (JSON or YAML): the guests to import, each with its own options and its
 * target node; `defaults` apply to every item that does not say otherwise. Validated with zod
 * before anything runs: an error names the manifest, the item (index and name) and the field.
 *
 * ```yaml
 * defaults:
 *   pool: /var/lib/libvirt/images
 *   verifyBoot: true
 * items:
 *   - source: exports/web01/web01.vmx
 *   - source: exports/db01/db01.vmx
 *     name: db01-kvm
 *     host: ssh://root@kvm2:22
 *     network: ["VM Network:prod"]
 * ```
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type NetworkMapping, parseNetworkMapping } from '../convert/target.js';
import { ExitCode, V2vError } from '../errors.js';
import { IMPORT_STORAGE, type ImportRequest } from '../import/importer.js';
import { READER_KINDS } from '../metadata/model.js';
import { type NodeSpec, parseSshUrl } from '../node/node-spec.js';

/** The manifest is wrong: names the file, the item and the field. Exit status 2. */
export class ManifestError extends V2vError {
  override readonly code = 'MANIFEST_INVALID';
  override readonly exitStatus = ExitCode.Usage;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const absolute = z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path');
const strings = z.union([z.string().min(1), z.array(z.string().min(1))]);

/** Options an item (or `defaults`) may give. */
const optionFields = {
  input: z.enum(READER_KINDS).optional(),
  host: z.string().min(1).optional(),
  identity: z.string().min(1).optional(),
  knownHosts: z.string().min(1).optional(),
  hostKeyFingerprint: z.string().min(1).optional(),
  acceptNewHostKey: z.boolean().optional(),
  connect: z.string().min(1).optional(),
  pool: absolute.optional(),
  network: strings.optional(),
  bridge: strings.optional(),
  storage: z.enum(IMPORT_STORAGE).optional(),
  outputFormat: z.enum(['qcow2', 'raw']).optional(),
  domainType: z.enum(['auto', 'kvm', 'qemu']).optional(),
  start: z.boolean().optional(),
  verifyBoot: z.boolean().optional(),
  /** Seconds. */
  verifyTimeout: z.number().positive().optional(),
  /** Queue mode: only a worker started with this `--label` takes the item. */
  label: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "use letters, digits, '.', '_' and '-'")
    .optional(),
};

const itemSchema = z.strictObject({
  source: strings,
  name: z
    .string()
    .regex(NAME_RE, "use letters, digits, '.', '_', '+' and '-' (at most 64)")
    .optional(),
  ...optionFields,
});

export const manifestSchema = z.strictObject({
  defaults: z.strictObject(optionFields).optional(),
  items: z.array(itemSchema).min(1, 'the manifest lists no items'),
});

export type ManifestInput = z.input<typeof manifestSchema>;
type ItemInput = z.output<typeof itemSchema>;

/** One item, resolved: its key, what it imports, and the import request. */
export interface BatchItem {
  /** Stable id in the state file and the report: the name, else `item<N>`. */
  key: string;
  index: number;
  /** `items[3] (db01)`, for messages. */
  label: string;
  request: ImportRequest;
  /** Queue mode: the worker label the item asks for. */
  queueLabel?: string | undefined;
}

export interface BatchManifest {
  /** The manifest file (or `<inline>`). */
  file: string;
  items: BatchItem[];
}

function fieldPath(p: readonly PropertyKey[], input: unknown): string {
  let out = '';
  for (const [i, k] of p.entries()) {
    if (typeof k === 'number') {
      out += `[${k}]`;
      if (i === 1 && p[0] === 'items') {
        const name = (input as { items?: { name?: unknown }[] })?.items?.[k]?.name;
        if (typeof name === 'string') out += ` (${name})`;
      }
    } else out += out ? `.${String(k)}` : String(k);
  }
  return out || '(top level)';
}

const list = (v: string | string[] | undefined) => (v === undefined ? [] : [v].flat());

/** Validates a parsed manifest; relative paths are relative to `baseDir`. */
export function resolveManifest(input: unknown, file: string, baseDir: string): BatchManifest {
  const parsed = manifestSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${fieldPath(i.path, input)}: ${i.message}`);
    throw new ManifestError(`${file}: ${lines.join('; ')}`, {
      hint: 'fix the manifest (see `v2v-load batch --help` for the fields)',
    });
  }
  const m = parsed.data;
  const items: BatchItem[] = m.items.map((raw: ItemInput, index) => {
    const it = { ...m.defaults, ...raw };
    const label = `items[${index}]${raw.name ? ` (${raw.name})` : ''}`;
    const at = (field: string, fn: () => unknown) => {
      try {
        return fn();
      } catch (e) {
        throw new ManifestError(`${file}: ${label}.${field}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    };
    const target: NodeSpec = {
      ...(it.host
        ? { ssh: at('host', () => parseSshUrl(it.host as string, 'host')) as NodeSpec['ssh'] }
        : {}),
      identity: it.identity && path.resolve(baseDir, it.identity),
      knownHosts: it.knownHosts && path.resolve(baseDir, it.knownHosts),
      hostKeyFingerprint: it.hostKeyFingerprint,
      acceptNewHostKey: it.acceptNewHostKey,
    };
    const networks = at('network', () => [
      ...list(it.network).map((n) => parseNetworkMapping(n, 'network')),
      ...list(it.bridge).map((n) => parseNetworkMapping(n, 'bridge')),
    ]) as NetworkMapping[];
    if (it.verifyBoot && it.start === false) {
      throw new ManifestError(`${file}: ${label}.verifyBoot: needs start (start: false given)`);
    }
    if (it.storage === 'snapshot' && it.host) {
      throw new ManifestError(
        `${file}: ${label}.storage: snapshot works on this machine only, not with host`,
      );
    }
    return {
      key: raw.name ?? `item${index + 1}`,
      index,
      label,
      request: {
        source: list(raw.source).map((s) =>
          it.input === 'libvirt' ? s : path.resolve(baseDir, s),
        ),
        input: it.input,
        target,
        connect: it.connect,
        pool: it.pool,
        name: raw.name,
        networks,
        storage: it.storage,
        outputFormat: it.outputFormat,
        domainType: it.domainType,
        start: it.start,
        verifyBoot: it.verifyBoot,
        verifyTimeoutMs: it.verifyTimeout === undefined ? undefined : it.verifyTimeout * 1000,
      },
      ...(it.label ? { queueLabel: it.label } : {}),
    };
  });
  const seen = new Map<string, string>();
  for (const item of items) {
    const where = `${item.request.target?.ssh ? JSON.stringify(item.request.target.ssh) : 'local'}\0${item.request.pool ?? ''}\0${item.key}`;
    const other = seen.get(where);
    if (other) {
      throw new ManifestError(
        `${file}: ${item.label}.name: ${item.key} is imported into the same pool on the same node as ${other}`,
        { hint: 'give each item its own name' },
      );
    }
    seen.set(where, item.label);
  }
  return { file, items };
}

/** Reads a manifest file: `.yaml`/`.yml` as YAML, anything else as JSON. */
export async function loadManifest(file: string): Promise<BatchManifest> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new ManifestError(`${file}: cannot read the manifest: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = /\.ya?ml$/i.test(file) ? parseYaml(text, { maxAliasCount: 100 }) : JSON.parse(text);
  } catch (e) {
    throw new ManifestError(
      `${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(e as Error).message}`,
    );
  }
  return resolveManifest(data, file, path.dirname(path.resolve(file)));
}
