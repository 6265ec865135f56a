/**
 * The `libvirt` reader: a domain defined in libvirt on the node, read with
 * `virsh -c URI dumpxml --inactive` (the persistent definition, not a running guest's state),
 * through the one virsh runner (C locale, typed errors: see provisioning/libvirt/errors.ts).
 * Storage-pool volumes are resolved with `virsh vol-path`; file and block disks are checked on
 * the node, a missing one being a note (the domain exists, its disk may be elsewhere).
 */
import { MetadataError, UsageError } from '../../errors.js';
import type { Node } from '../../node/node.js';
import { isNotFound, LibvirtError } from '../../provisioning/libvirt/errors.js';
import { DEFAULT_LIBVIRT_URI, Virsh } from '../../provisioning/libvirt/virsh.js';
import type { SourceGuest } from '../model.js';
import type { MetadataReader, ReaderContext, ReaderOptionSpec, ReaderOptions } from '../reader.js';
import { validateGuest } from '../validate.js';
import { parseDomainXml } from './domain-xml.js';

function uriOf(options: ReaderOptions): string {
  return options.connect ?? DEFAULT_LIBVIRT_URI;
}

/** Reads a domain defined in libvirt on the node (`-i libvirt NAME [--connect URI]`). */
export class LibvirtReader implements MetadataReader {
  readonly kind = 'libvirt' as const;
  readonly optionSpecs: readonly ReaderOptionSpec[] = [
    {
      flag: 'connect',
      alias: 'c',
      key: 'connect',
      type: 'string',
      describe: `libvirt URI on the node (default ${DEFAULT_LIBVIRT_URI})`,
    },
  ];

  /** One argument, the domain name; `--connect` must look like a libvirt URI. */
  check(source: string[], options: ReaderOptions): void {
    if (source.length !== 1 || !source[0]) {
      throw new UsageError(
        `-i libvirt takes exactly one domain name, got ${source.length} argument(s)`,
        { hint: `list the domains with \`virsh -c ${uriOf(options)} list --all\`` },
      );
    }
    if (/[\u0000-\u001f\u007f]/.test(source[0])) {
      throw new UsageError(
        `-i libvirt: domain name ${JSON.stringify(source[0])} has control characters`,
      );
    }
    const uri = uriOf(options);
    if (!/^[a-z][a-z0-9+.-]*:\/\/[^\s]*$/i.test(uri)) {
      throw new UsageError(`--connect '${uri}' is not a libvirt URI`, {
        hint: 'e.g. qemu:///system, xen+ssh://root@host/, esx://host/?no_verify=1',
      });
    }
  }

  /** Dumps the domain's XML on `ctx.node`, resolves its disks there, validates the guest. */
  async read(source: string[], options: ReaderOptions, ctx: ReaderContext): Promise<SourceGuest> {
    this.check(source, options);
    const name = source[0] as string;
    const uri = uriOf(options);
    const where = ctx.node.isLocal ? '' : ` on ${ctx.node.name}`;
    const label = `libvirt domain "${name}" (${uri}${where})`;
    const virsh = new Virsh(ctx.node, uri);
    let xml: string;
    try {
      xml = await virsh.run(['dumpxml', '--inactive', '--', name], `read domain "${name}"`);
    } catch (e) {
      if (isNotFound(e)) {
        throw new MetadataError(label, `no such domain: ${(e as LibvirtError).detail}`, {
          hint: `list the domains with \`virsh -c ${uri} list --all\``,
          cause: e,
        });
      }
      throw e;
    }
    const { guest, sources } = parseDomainXml(xml, label, { kind: 'libvirt', source: name });
    ctx.log.debug(`${label}: ${guest.disks.length} disk(s), ${guest.cdroms.length} cd-rom(s)`);
    for (const ref of sources) {
      const entry = ref.device === 'disk' ? guest.disks[ref.index] : guest.cdroms[ref.index];
      if (!entry?.path) continue;
      const what = `${ref.device === 'disk' ? 'disk' : 'cd-rom'} ${ref.slot}`;
      if (ref.kind === 'datastore') {
        guest.notes.push(`${what}: "${entry.path}" is on an ESX datastore: not checked`);
        continue;
      }
      if (ref.kind === 'volume' && ref.pool && ref.volume) {
        const resolved = await volumePath(virsh, ref.pool, ref.volume);
        if (resolved.path) entry.path = resolved.path;
        else {
          guest.notes.push(
            `${what}: storage volume "${ref.volume}" in pool "${ref.pool}" not found: ${resolved.error}`,
          );
        }
      } else if (ref.kind === 'file' || ref.kind === 'block') {
        const note = await missingNote(ctx.node, entry.path);
        if (note) guest.notes.push(`${what}: ${note}`);
      }
    }
    return validateGuest(guest, label);
  }
}

async function volumePath(
  virsh: Virsh,
  pool: string,
  volume: string,
): Promise<{ path?: string; error?: string }> {
  try {
    const p = (
      await virsh.run(['vol-path', '--pool', pool, '--', volume], `find volume "${volume}"`)
    ).trim();
    return p ? { path: p } : { error: 'virsh vol-path printed no path' };
  } catch (e) {
    if (e instanceof LibvirtError) return { error: e.detail };
    throw e;
  }
}

async function missingNote(node: Node, p: string): Promise<string | undefined> {
  try {
    return (await node.stat(p)) ? undefined : `${p} does not exist`;
  } catch (e) {
    return `${p} cannot be checked: ${(e as Error).message}`;
  }
}
