/**
 * `v2v-load domain <verb>`: the libvirt domain API on a node (local or --host ssh://...).
 */
import * as fs from 'node:fs/promises';
import type { Argv } from 'yargs';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { UsageError } from '../../errors.js';
import type { LibvirtConnection } from '../../provisioning/libvirt/connection.js';
import type { Domain } from '../../provisioning/libvirt/domain.js';
import type { SnapshotInfo } from '../../provisioning/libvirt/snapshot.js';
import { DEFAULT_LIBVIRT_URI } from '../../provisioning/libvirt/virsh.js';
import { defineCommand } from '../command.js';
import type { CliContext, GlobalArgs } from '../context.js';
import { type NodeArgs, nodeSpecFrom, withNodeOptions } from '../node-options.js';

/** What every verb's action sees of the arguments. */
interface DomainArgs extends GlobalArgs, NodeArgs {
  verb: string;
  connect: string;
  name?: string;
  file?: string;
  snapshot?: string;
  description?: string;
  graceful?: boolean;
  children?: boolean;
  inactive?: boolean;
  paused?: boolean;
  'snapshots-metadata'?: boolean;
  'managed-save'?: boolean;
  nvram?: boolean;
}

type Out = (args: DomainArgs, value: unknown, text: string) => void;

/** The run's libvirt connection (connects to the node: check every argument before). */
async function connect(ctx: CliContext, args: DomainArgs): Promise<LibvirtConnection> {
  const run = await createRunContainer(ctx.root, nodeSpecFrom(args), { libvirtUri: args.connect });
  return run.resolve<LibvirtConnection>(TOKENS.LibvirtConnection);
}

function needName(args: DomainArgs): string {
  if (!args.name) throw new UsageError('give the domain: its name, id or UUID');
  return args.name;
}

function snapshotLine(s: SnapshotInfo): string {
  return `${s.name}\t${s.creationTime.toISOString()}\t${s.state}${s.current ? '\tcurrent' : ''}${s.parent ? `\tparent=${s.parent}` : ''}`;
}

type Action = (dom: Domain, args: DomainArgs, out: Out) => Promise<void>;

/** Verbs that take a SNAPSHOT argument after the domain. */
const SNAPSHOT_VERBS = new Set(['snapshot-create', 'snapshot-revert', 'snapshot-delete']);

/** Verbs that act on one domain: name → [description, action]. */
const DOMAIN_VERBS: Record<string, [string, Action]> = {
  undefine: [
    'remove the persistent definition',
    async (d, a, out) => {
      await d.undefine({
        snapshotsMetadata: a['snapshots-metadata'] ?? false,
        managedSave: a['managed-save'] ?? false,
        nvram: a.nvram ?? false,
      });
      out(a, { name: d.name, undefined: true }, `domain ${d.name} undefined`);
    },
  ],
  start: [
    'start a defined domain',
    async (d, a, out) => {
      await d.start({ paused: a.paused ?? false });
      out(a, { name: d.name, started: true }, `domain ${d.name} started`);
    },
  ],
  destroy: [
    'stop at once (pull the plug)',
    async (d, a, out) => {
      await d.destroy({ graceful: a.graceful ?? false });
      out(a, { name: d.name, destroyed: true }, `domain ${d.name} destroyed`);
    },
  ],
  shutdown: [
    'ask the guest to shut down (ACPI)',
    async (d, a, out) => {
      await d.shutdown();
      out(a, { name: d.name, shutdown: 'requested' }, `domain ${d.name} is being shut down`);
    },
  ],
  reboot: [
    'ask the guest to reboot',
    async (d, a, out) => {
      await d.reboot();
      out(a, { name: d.name, reboot: 'requested' }, `domain ${d.name} is being rebooted`);
    },
  ],
  reset: [
    'reset the virtual hardware',
    async (d, a, out) => {
      await d.reset();
      out(a, { name: d.name, reset: true }, `domain ${d.name} was reset`);
    },
  ],
  suspend: [
    'pause the vCPUs',
    async (d, a, out) => {
      await d.suspend();
      out(a, { name: d.name, suspended: true }, `domain ${d.name} suspended`);
    },
  ],
  resume: [
    'resume a paused domain',
    async (d, a, out) => {
      await d.resume();
      out(a, { name: d.name, resumed: true }, `domain ${d.name} resumed`);
    },
  ],
  state: [
    "state and reason, in libvirt's words",
    async (d, a, out) => {
      const s = await d.getState();
      out(
        a,
        { name: d.name, uuid: d.uuid, state: s.state, reason: s.reason },
        `${s.state} (${s.reason})`,
      );
    },
  ],
  info: [
    'memory, vCPUs, CPU time, state, flags',
    async (d, a, out) => {
      const i = await d.getInfo();
      const text = Object.entries(i)
        .map(([k, v]) => `${k}: ${v === undefined ? '-' : String(v)}`)
        .join('\n');
      out(a, i, text);
    },
  ],
  xml: [
    'the domain XML',
    async (d, a, out) => {
      const xml = await d.getXml({ inactive: a.inactive ?? false });
      out(a, { name: d.name, xml }, xml.trimEnd());
    },
  ],
  stats: [
    'all statistics (virsh domstats --raw)',
    async (d, a, out) => {
      const s = await d.stats();
      out(
        a,
        { name: d.name, stats: Object.fromEntries(s) },
        [...s].map(([k, v]) => `${k}=${v}`).join('\n'),
      );
    },
  ],
  'snapshot-list': [
    'list snapshots',
    async (d, a, out) => {
      const list = await d.snapshots.list();
      out(a, { name: d.name, snapshots: list }, list.map(snapshotLine).join('\n'));
    },
  ],
  'snapshot-create': [
    'take a snapshot: NAME SNAPSHOT [--description]',
    async (d, a, out) => {
      if (!a.snapshot)
        throw new UsageError('snapshot-create: give the snapshot name after the domain');
      const s = await d.snapshots.create(
        a.snapshot,
        a.description === undefined ? {} : { description: a.description },
      );
      out(a, s, snapshotLine(s));
    },
  ],
  'snapshot-revert': [
    'revert to a snapshot: NAME SNAPSHOT',
    async (d, a, out) => {
      if (!a.snapshot)
        throw new UsageError('snapshot-revert: give the snapshot name after the domain');
      await d.snapshots.revert(a.snapshot);
      out(a, { name: d.name, reverted: a.snapshot }, `domain ${d.name} reverted to ${a.snapshot}`);
    },
  ],
  'snapshot-delete': [
    'delete a snapshot: NAME SNAPSHOT [--children]',
    async (d, a, out) => {
      if (!a.snapshot)
        throw new UsageError('snapshot-delete: give the snapshot name after the domain');
      await d.snapshots.delete(a.snapshot, { children: a.children ?? false });
      out(a, { name: d.name, deleted: a.snapshot }, `snapshot ${a.snapshot} of ${d.name} deleted`);
    },
  ],
};

function options<T>(y: Argv<T>) {
  return withNodeOptions(y)
    .option('connect', {
      alias: 'c',
      type: 'string',
      default: DEFAULT_LIBVIRT_URI,
      describe: 'libvirt connection URI on the node',
    })
    .option('graceful', { type: 'boolean', describe: 'destroy: SIGTERM only, no SIGKILL' })
    .option('paused', { type: 'boolean', describe: 'start: leave the vCPUs paused' })
    .option('inactive', { type: 'boolean', describe: 'xml: the persistent definition' })
    .option('description', { type: 'string', describe: 'snapshot-create: a description' })
    .option('children', { type: 'boolean', describe: 'snapshot-delete: with its descendants' })
    .option('snapshots-metadata', { type: 'boolean', describe: 'undefine: also snapshot metadata' })
    .option('managed-save', { type: 'boolean', describe: 'undefine: also the managed save image' })
    .option('nvram', { type: 'boolean', describe: 'undefine: also the NVRAM file' });
}

/** Every usage error of `domain`, found before any connection is made. */
function checkUsage(args: DomainArgs): void {
  const verb = args.verb;
  if (verb === 'list') return;
  needName(args);
  if (SNAPSHOT_VERBS.has(verb) && !args.snapshot) {
    throw new UsageError(`${verb}: give the snapshot name after the domain`);
  }
}

export function domainCommand(ctx: CliContext) {
  const out: Out = (args, value, text) => {
    ctx.out(args.json ? `${JSON.stringify(value, null, 2)}\n` : text === '' ? '' : `${text}\n`);
  };
  const verbs = ['list', 'define', ...Object.keys(DOMAIN_VERBS)];
  return defineCommand({
    command: 'domain <verb> [name] [snapshot]',
    describe: 'libvirt domains on a node: list, define, start, shutdown, state, snapshots ...',
    builder: (y) =>
      options(y)
        .positional('verb', { choices: verbs, demandOption: true, describe: 'what to do' })
        .positional('name', {
          type: 'string',
          describe: 'the domain (name, id or UUID); for define: the XML file on this machine',
        })
        .positional('snapshot', { type: 'string', describe: 'the snapshot (snapshot-* verbs)' })
        .example('$0 domain list --json', 'every domain with its state')
        .example('$0 domain define guest.xml', 'define a domain from an XML file')
        .example('$0 domain state web01 --json', '{"name","state","reason"}')
        .example(
          '$0 domain snapshot-create web01 before-upgrade --host ssh://root@vmhost1',
          'a snapshot on a remote node',
        )
        .epilog(
          `verbs: list, define FILE, ${Object.entries(DOMAIN_VERBS)
            .map(([v, [d]]) => `${v} (${d})`)
            .join(', ')}`,
        ),
    handler: async (args) => {
      const verb = args.verb;
      checkUsage(args);
      let xml: string | undefined;
      if (verb === 'define') {
        const file = needName(args);
        try {
          xml = await fs.readFile(file, 'utf8');
        } catch (e) {
          throw new UsageError(`define ${file}: cannot read the file: ${(e as Error).message}`);
        }
      }
      const conn = await connect(ctx, args);
      if (verb === 'list') {
        const list = await conn.listDomains();
        out(
          args,
          list,
          list.map((d) => `${d.id ?? '-'}\t${d.name}\t${d.state} (${d.reason})`).join('\n'),
        );
        return;
      }
      if (xml !== undefined) {
        const dom = await conn.define(xml);
        out(args, { ...dom.handle }, `domain ${dom.name} defined (${dom.uuid})`);
        return;
      }
      const entry = DOMAIN_VERBS[verb];
      if (!entry) throw new UsageError(`unknown verb ${verb}`);
      const dom = await conn.lookup(needName(args));
      await entry[1](dom, args, out);
    },
  });
}
