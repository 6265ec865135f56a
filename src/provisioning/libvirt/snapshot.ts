/** Snapshots of one domain: list, info, create, revert, delete (over `virsh snapshot-*`). */
import { asArray, attr, parseUntrustedXml, textOf } from '../../formats/xml.js';
import type { DomainHandle } from './domain.js';
import { isNotFound } from './errors.js';
import type { Virsh } from './virsh.js';

/** The domain state a snapshot recorded (libvirt's words in the snapshot XML). */
export type SnapshotState =
  | 'running'
  | 'blocked'
  | 'paused'
  | 'shutdown'
  | 'shutoff'
  | 'crashed'
  | 'pmsuspended'
  | 'disk-snapshot'
  | 'nostate';

/** What a snapshot is. */
export interface SnapshotInfo {
  name: string;
  description: string | undefined;
  /** When it was taken. */
  creationTime: Date;
  state: SnapshotState;
  /** True for the domain's current snapshot. */
  current: boolean;
  parent: string | undefined;
  /** internal (inside qcow2), external (overlay files), or no memory / disk snapshot. */
  memory: string | undefined;
  disks: { name: string; snapshot: string | undefined; file: string | undefined }[];
}

/** Options of {@link SnapshotApi.create}. */
export interface SnapshotCreateOptions {
  description?: string;
  /** External disk-only snapshot (overlay files; no memory). */
  diskOnly?: boolean;
  /** All or nothing. */
  atomic?: boolean;
  /** Quiesce the guest file systems (needs the guest agent). */
  quiesce?: boolean;
}

/** Parses `virsh snapshot-dumpxml` into a {@link SnapshotInfo} (current is filled by the caller). */
export function parseSnapshotXml(xml: string, source: string, current: boolean): SnapshotInfo {
  const tree = parseUntrustedXml(xml, source);
  const s = (tree.domainsnapshot ?? {}) as Record<string, unknown>;
  const disks = (s.disks ?? {}) as Record<string, unknown>;
  return {
    name: textOf(s.name) ?? '',
    description: textOf(s.description),
    creationTime: new Date(Number(textOf(s.creationTime) ?? 0) * 1000),
    state: (textOf(s.state) ?? 'nostate') as SnapshotState,
    current,
    parent: textOf((s.parent as Record<string, unknown> | undefined)?.name),
    memory: attr(s.memory, 'snapshot'),
    disks: asArray(disks.disk as unknown[]).map((d) => ({
      name: attr(d, 'name') ?? '',
      snapshot: attr(d, 'snapshot'),
      file: attr((d as Record<string, unknown>).source, 'file'),
    })),
  };
}

/** The snapshots of one domain. */
export class SnapshotApi {
  constructor(
    private readonly virsh: Virsh,
    private readonly domain: DomainHandle,
  ) {}

  private op(verb: string, name?: string): string {
    return `${verb} snapshot${name === undefined ? '' : ` ${JSON.stringify(name)}`} of domain ${JSON.stringify(this.domain.name)}`;
  }

  /** Snapshot names, oldest first... as libvirt lists them (`snapshot-list --name`). */
  async names(): Promise<string[]> {
    const out = await this.virsh.run(
      ['snapshot-list', '--domain', this.domain.uuid, '--name'],
      this.op('list'),
    );
    return out.split('\n').filter((l) => l !== '');
  }

  /** The current snapshot's name, or undefined. */
  async currentName(): Promise<string | undefined> {
    try {
      const out = await this.virsh.run(
        ['snapshot-current', '--domain', this.domain.uuid, '--name'],
        this.op('read the current'),
      );
      return out.trim() || undefined;
    } catch (e) {
      if (isNotFound(e) || /no current snapshot/i.test((e as Error).message)) return undefined;
      throw e;
    }
  }

  /** Name, creation time, state, current flag, parent of one snapshot. */
  async info(name: string, current?: string | undefined): Promise<SnapshotInfo> {
    const xml = await this.virsh.run(
      ['snapshot-dumpxml', '--domain', this.domain.uuid, '--snapshotname', name],
      this.op('read', name),
    );
    const cur = current === undefined ? await this.currentName() : current;
    return parseSnapshotXml(
      xml,
      `snapshot ${JSON.stringify(name)} of ${this.domain.name}`,
      cur === name,
    );
  }

  /** Every snapshot with its info, oldest first. */
  async list(): Promise<SnapshotInfo[]> {
    const [names, current] = await Promise.all([this.names(), this.currentName()]);
    const out: SnapshotInfo[] = [];
    for (const n of names) out.push(await this.info(n, current ?? ''));
    return out.sort(
      (a, b) => a.creationTime.getTime() - b.creationTime.getTime() || a.name.localeCompare(b.name),
    );
  }

  /** Takes a snapshot (internal by default: the domain must have qcow2 disks). */
  async create(name: string, options: SnapshotCreateOptions = {}): Promise<SnapshotInfo> {
    const args = ['snapshot-create-as', '--domain', this.domain.uuid, '--name', name];
    if (options.description !== undefined) args.push('--description', options.description);
    if (options.diskOnly) args.push('--disk-only');
    if (options.atomic) args.push('--atomic');
    if (options.quiesce) args.push('--quiesce');
    await this.virsh.run(args, this.op('create', name));
    return this.info(name);
  }

  /** Reverts the domain to a snapshot (`running`/`paused`: the state to end in). */
  async revert(
    name: string,
    options: { running?: boolean; paused?: boolean; force?: boolean } = {},
  ): Promise<void> {
    const args = ['snapshot-revert', '--domain', this.domain.uuid, '--snapshotname', name];
    if (options.running) args.push('--running');
    if (options.paused) args.push('--paused');
    if (options.force) args.push('--force');
    await this.virsh.run(args, this.op('revert to', name));
  }

  /** Deletes a snapshot (`children`: with its descendants; `metadataOnly`: keep the data). */
  async delete(
    name: string,
    options: { children?: boolean; childrenOnly?: boolean; metadataOnly?: boolean } = {},
  ): Promise<void> {
    const args = ['snapshot-delete', '--domain', this.domain.uuid, '--snapshotname', name];
    if (options.children) args.push('--children');
    if (options.childrenOnly) args.push('--children-only');
    if (options.metadataOnly) args.push('--metadata');
    await this.virsh.run(args, this.op('delete', name));
  }
}
