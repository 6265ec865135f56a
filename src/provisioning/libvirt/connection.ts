/**
 * A libvirt connection on a node: `virsh -c URI` there. Lists domains, reports capabilities,
 * looks domains up, defines and creates them.
 */
import type { Node } from '../../node/node.js';
import { type HostCapabilities, parseCapabilities } from './capabilities.js';
import { Domain, type DomainHandle } from './domain.js';
import { buildDomainXml, type DomainDefinition, describeDomainXml } from './domain-xml-types.js';
import { LibvirtError } from './errors.js';
import { parseDomStatsRaw } from './parse.js';
import { type DomainState, stateFromCodes } from './state.js';
import { DEFAULT_LIBVIRT_URI, DEFAULT_VIRSH_TIMEOUT_MS, Virsh } from './virsh.js';

export { DEFAULT_LIBVIRT_URI };

/** A domain in a listing: its handle and state. */
export interface DomainListEntry extends DomainHandle, DomainState {}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parses `virsh list --all --uuid --name` ("UUID NAME" lines; names may hold spaces). */
export function parseUuidNameList(text: string): { uuid: string; name: string }[] {
  const out: { uuid: string; name: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f-]{36}) (.*)$/i.exec(line);
    if (m?.[1] && m[2] !== undefined) out.push({ uuid: m[1].toLowerCase(), name: m[2] });
  }
  return out;
}

/** Parses `virsh list --all --id --name` ("ID NAME" lines, `-` for inactive domains). */
export function parseIdNameList(text: string): Map<string, number | undefined> {
  const out = new Map<string, number | undefined>();
  for (const line of text.split('\n')) {
    const m = /^(-|\d+) (.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) out.set(m[2], m[1] === '-' ? undefined : Number(m[1]));
  }
  return out;
}

/** A libvirt connection (`uri`) on a node. */
export class LibvirtConnection {
  readonly virsh: Virsh;

  constructor(
    readonly node: Node,
    readonly uri: string = DEFAULT_LIBVIRT_URI,
    timeoutMs: number = DEFAULT_VIRSH_TIMEOUT_MS,
  ) {
    this.virsh = new Virsh(node, uri, timeoutMs);
  }

  /** Every domain (active and inactive) with its handle and state. */
  async listDomains(): Promise<DomainListEntry[]> {
    const [uuids, ids, stats] = await Promise.all([
      this.virsh.run(['list', '--all', '--uuid', '--name'], 'list domains'),
      this.virsh.run(['list', '--all', '--id', '--name'], 'list domains'),
      this.virsh.run(['domstats', '--raw', '--state'], 'list domain states'),
    ]);
    const idOf = parseIdNameList(ids);
    const stateOf = parseDomStatsRaw(stats);
    const out: DomainListEntry[] = [];
    for (const { uuid, name } of parseUuidNameList(uuids)) {
      const s = stateOf.get(name);
      // A domain undefined between the calls is left out.
      if (!s) continue;
      const state = stateFromCodes(Number(s.get('state.state')), Number(s.get('state.reason')));
      out.push({ name, uuid, id: idOf.get(name), ...state });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The host's capabilities: domain types and machines it offers. */
  async capabilities(): Promise<HostCapabilities> {
    const xml = await this.virsh.run(['capabilities'], 'read host capabilities');
    return parseCapabilities(xml, `virsh -c ${this.uri} capabilities on ${this.node.name}`);
  }

  /** The domain types (e.g. qemu, kvm) the host offers for `arch` hvm guests. */
  async domainTypes(arch = 'x86_64'): Promise<string[]> {
    const caps = await this.capabilities();
    return caps.guests.find((g) => g.osType === 'hvm' && g.arch === arch)?.domainTypes ?? [];
  }

  private notFound(what: string): LibvirtError {
    return new LibvirtError(
      'not-found',
      `look up domain ${what}`,
      `no domain ${what}`,
      this.virsh.where,
    );
  }

  private async find(
    what: string,
    pick: (e: { uuid: string; name: string; id: number | undefined }) => boolean,
  ): Promise<Domain> {
    const [uuids, ids] = await Promise.all([
      this.virsh.run(['list', '--all', '--uuid', '--name'], `look up domain ${what}`),
      this.virsh.run(['list', '--all', '--id', '--name'], `look up domain ${what}`),
    ]);
    const idOf = parseIdNameList(ids);
    for (const e of parseUuidNameList(uuids)) {
      const entry = { ...e, id: idOf.get(e.name) };
      if (pick(entry)) return new Domain(this.virsh, entry);
    }
    throw this.notFound(what);
  }

  /** The domain named exactly `name` (never an id or UUID lookup). */
  lookupByName(name: string): Promise<Domain> {
    return this.find(`named ${JSON.stringify(name)}`, (e) => e.name === name);
  }

  /** The running domain with id `id`. */
  lookupById(id: number): Promise<Domain> {
    return this.find(`with id ${id}`, (e) => e.id === id);
  }

  /** The domain with UUID `uuid`. */
  lookupByUuid(uuid: string): Promise<Domain> {
    const u = uuid.toLowerCase();
    return this.find(`with UUID ${uuid}`, (e) => e.uuid === u);
  }

  /** By UUID when `ref` looks like one, by id when all digits and no such name, else by name. */
  async lookup(ref: string): Promise<Domain> {
    if (UUID_RE.test(ref)) return this.lookupByUuid(ref);
    try {
      return await this.lookupByName(ref);
    } catch (e) {
      if (/^\d+$/.test(ref)) return this.lookupById(Number(ref));
      throw e;
    }
  }

  private async fromXml(
    xmlOrDef: string | DomainDefinition,
    verb: 'define' | 'create',
  ): Promise<Domain> {
    const xml = typeof xmlOrDef === 'string' ? xmlOrDef : buildDomainXml(xmlOrDef);
    let name = typeof xmlOrDef === 'string' ? undefined : xmlOrDef.name;
    const op = `${verb} domain${name === undefined ? '' : ` ${JSON.stringify(name)}`}`;
    await this.virsh.withNodeFile('domain.xml', xml, (file) =>
      this.virsh.run([verb, '--file', file], op),
    );
    if (name === undefined) name = describeDomainXml(xml, 'domain XML').name;
    return this.lookupByName(name);
  }

  /**
   * Defines a persistent domain from XML or a typed definition. The XML is written to a file
   * on the node first, then `virsh define FILE`, then the file is removed.
   */
  define(xmlOrDef: string | DomainDefinition): Promise<Domain> {
    return this.fromXml(xmlOrDef, 'define');
  }

  /** Creates and starts a transient domain (gone when it stops). */
  create(xmlOrDef: string | DomainDefinition): Promise<Domain> {
    return this.fromXml(xmlOrDef, 'create');
  }

  /** Restores a domain saved with {@link Domain.save} from `file` on the node. */
  async restore(file: string, options: { paused?: boolean } = {}): Promise<void> {
    await this.virsh.run(
      ['restore', '--file', file, ...(options.paused ? ['--paused'] : [])],
      `restore domain from ${file}`,
    );
  }
}
