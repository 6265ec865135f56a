/**
 * `v2v-load convert SOURCE -o DIR`: a VMware or Xen guest out as disks + a libvirt domain XML
 * that boot on KVM. Stages on stderr (with a progress bar for the final copy on a terminal),
 * or JSON-line events and a final result object with `--json`.
 */
import type { Argv } from 'yargs';
import { CONVERT_STORAGE } from '../../convert/disks.js';
import { INITRAMFS_MODES, type InitramfsMode } from '../../convert/initramfs.js';
import {
  type ConvertEvent,
  Converter,
  type ConvertRequest,
  type ConvertResult,
} from '../../convert/pipeline.js';
import { type NetworkMapping, parseNetworkMapping } from '../../convert/target.js';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { UsageError } from '../../errors.js';
import { READER_KINDS, type ReaderKind } from '../../metadata/model.js';
import type { MetadataReader, ReaderOptions } from '../../metadata/reader.js';
import { guessKind, readerOptionSpecs } from '../../metadata/registry.js';
import { DOMAIN_TYPES, type DomainType } from '../../provisioning/libvirt/domain-xml-types.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { nodeSpecFrom, withNodeOptions } from '../node-options.js';
import { progressBar } from './image/progress.js';
import { readerOptionsFrom } from './inspect.js';

/** Reader flags that convert declares itself (with the same meaning for -i disk). */
const OWN_FLAGS = new Set(['network', 'name', 'connect']);

function withConvertReaderOptions<T>(y: Argv<T>, readers: readonly MetadataReader[]): Argv<T> {
  for (const [flag, { spec, kinds }] of readerOptionSpecs(readers)) {
    if (OWN_FLAGS.has(flag)) continue;
    y.option(flag, {
      type: spec.type === 'array' ? 'string' : spec.type,
      ...(spec.type === 'array' ? { array: true } : {}),
      describe: `-i ${kinds.join('|')}: ${spec.describe}`,
      group: 'Reader options:',
    });
  }
  return y;
}

/** `--with NAME=PATH` values as a record. */
export function parseWith(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) {
      throw new UsageError(`--with ${v}: expected NAME=PATH`, {
        hint: 'e.g. --with kernel=/srv/pkgs/linux-image-6.1.0-28-amd64.deb',
      });
    }
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** The human summary of a conversion. */
export function formatConvertResult(r: ConvertResult): string {
  const lines: string[] = [];
  lines.push(
    `${r.dryRun ? 'Dry run of' : 'Converted'} ${r.name}: ${r.guest.productName} (${r.source.hypervisor} → kvm)`,
  );
  lines.push(
    `  modules: ${[
      r.modules.hvsource && `hvsource/${r.modules.hvsource}`,
      `guestos/${r.modules.guestos}`,
      `hvtarget/${r.modules.hvtarget}`,
    ]
      .filter(Boolean)
      .join(', ')}`,
  );
  lines.push(
    `  kernels: ${r.guest.kernels.join(', ')}; initramfs: ${r.guest.initramfsTool}; bootloader: ${r.guest.bootloader}`,
  );
  for (const d of r.disks) lines.push(`  disk ${d.dev}: ${d.path} (${d.format})`);
  if (r.xmlPath) lines.push(`  domain XML: ${r.xmlPath}`);
  for (const i of r.interfaces) {
    lines.push(
      `  interface ${i.name} (${i.mac}) → ${i.newName}${i.addresses.length ? `, addresses kept: ${i.addresses.join(', ')}` : ''} [${i.tool}]`,
    );
  }
  for (const n of r.notes ?? []) lines.push(`  note: ${n}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  if (r.verify) {
    lines.push(
      r.verify.booted
        ? `  boot check: booted in ${r.verify.seconds} s ("${r.verify.matched}")`
        : `  boot check: DID NOT BOOT: ${r.verify.reason}\n${r.verify.consoleTail.replace(/^/gm, '    | ')}`,
    );
  }
  lines.push(
    `  stages: ${Object.entries(r.stages)
      .map(([s, ms]) => `${s} ${(ms / 1000).toFixed(1)}s`)
      .join(', ')}`,
  );
  if (r.dryRun) {
    lines.push('', 'Plan (nothing was written):');
    for (const p of r.plan) lines.push(p.replace(/^/gm, '  '), '');
    lines.push('', 'Domain XML:', r.xml.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

export function convertCommand(ctx: CliContext) {
  const readers = () => ctx.root.resolveAll<MetadataReader>(TOKENS.MetadataReader);
  return defineCommand({
    command: 'convert <source..>',
    describe: 'convert a VMware or Xen guest for KVM: disks + libvirt domain XML in -o DIR',
    builder: (y) =>
      withConvertReaderOptions(
        withNodeOptions(y)
          .positional('source', {
            type: 'string',
            array: true,
            demandOption: true,
            describe: 'a .vmx, .ovf or domain .xml file, a libvirt domain name, or disk images',
          })
          .option('input', {
            alias: 'i',
            choices: READER_KINDS,
            describe: 'the input kind (guessed from the source when not given)',
          })
          .option('output-dir', {
            alias: 'o',
            type: 'string',
            demandOption: true,
            describe:
              'where <name>-sda.qcow2 (sdb..) and <name>.xml go (absolute path on the node)',
          })
          .option('name', {
            type: 'string',
            describe: "the converted guest's name (default: the source's)",
          })
          .option('storage', {
            choices: CONVERT_STORAGE,
            default: 'copy' as (typeof CONVERT_STORAGE)[number],
            describe:
              'copy: new disks, source only read; snapshot: a qcow2 overlay over the source is the output; in-place: convert the source itself',
          })
          .option('snapshot-dir', {
            type: 'string',
            describe: 'copy: where the working overlays go (default: the output directory)',
          })
          .option('output-format', {
            choices: ['qcow2', 'raw'] as const,
            default: 'qcow2' as 'qcow2' | 'raw',
            describe: 'format of the output disks',
          })
          .option('initramfs', {
            choices: INITRAMFS_MODES,
            default: 'extend' as InitramfsMode,
            describe:
              "extend: append the target's drivers to the guest's initramfs (no rebuild; where known to be right, else rebuild); rebuild: always rebuild it with the guest's own tool",
          })
          .option('virtio', {
            type: 'boolean',
            default: true,
            describe: 'virtio disks and NICs; --no-virtio: IDE disks and e1000 NICs',
          })
          .option('domain-type', {
            choices: ['auto', ...DOMAIN_TYPES] as const,
            default: 'auto' as 'auto' | DomainType,
            describe:
              'libvirt domain type: kvm, or qemu for hosts without KVM (TCG); auto: kvm when KVM works on the node',
          })
          .option('accel', {
            choices: ['auto', 'kvm', 'tcg'] as const,
            default: 'auto' as 'auto' | 'kvm' | 'tcg',
            describe:
              'how the libguestfs appliance runs: auto tries KVM, then TCG (LIBGUESTFS_BACKEND_SETTINGS, when set, decides)',
          })
          .option('network', {
            type: 'string',
            array: true,
            describe:
              'map a source network to a libvirt network: IN:OUT, or OUT for all (default: default); repeatable',
          })
          .option('bridge', {
            type: 'string',
            array: true,
            describe: 'map a source network to a host bridge: IN:OUT, or OUT for all; repeatable',
          })
          .option('with', {
            type: 'string',
            array: true,
            describe:
              "a file a module needs: kernel=PATH (a .deb or .rpm kernel package with virtio, installed with the guest's own package tool); repeatable",
          })
          .option('virtio-win', {
            type: 'string',
            describe:
              'virtio drivers for Windows guests: a directory or ISO in the virtio-win layout (viostor/w7/amd64/...); without it Windows gets IDE and e1000',
            group: 'Windows guests:',
          })
          .option('remove-vmware-tools-firstboot', {
            type: 'boolean',
            default: false,
            describe:
              "a RunOnce entry runs VMware Tools' uninstaller at the first logon on KVM (off by default)",
            group: 'Windows guests:',
          })
          .option('dry-run', {
            type: 'boolean',
            default: false,
            describe: 'print the plan (packages, file diffs, initramfs, XML) and write nothing',
          })
          .option('verify-boot', {
            type: 'boolean',
            default: false,
            describe:
              'boot the result on a throwaway overlay, isolated network, and wait for userspace',
          })
          .option('verify-timeout', {
            type: 'number',
            default: 300,
            describe: 'seconds verify-boot waits for userspace',
          })
          .option('connect', {
            alias: 'c',
            type: 'string',
            describe: 'libvirt URI on the node (-i libvirt, --verify-boot; default qemu:///system)',
          })
          .option('appliance-smp', {
            type: 'number',
            describe: 'vCPUs of the libguestfs appliance (default 1)',
          })
          .example('$0 convert guest.vmx -o /var/lib/libvirt/images', 'convert a VMware guest')
          .example('$0 convert guest.vmx -o /srv/out --dry-run', 'show what would change')
          .example(
            '$0 convert web.xml -i libvirtxml -o /srv/out --network xenbr0:default',
            'a Xen guest',
          ),
        readers(),
      ),
    handler: async (args) => {
      const all = readers();
      const kind: ReaderKind = args.input ?? guessKind(args.source);
      const networks: NetworkMapping[] = [
        ...(args.network ?? []).map((n) => parseNetworkMapping(n, 'network')),
        ...(args.bridge ?? []).map((n) => parseNetworkMapping(n, 'bridge')),
      ];
      // Reader options: the reader's own flags, plus --name/--network/--connect where the
      // reader takes them (-i disk: the guest's name and its NICs; -i libvirt: the URI).
      const readerArgs: Record<string, unknown> = { ...args };
      delete readerArgs.network;
      delete readerArgs.name;
      delete readerArgs.connect;
      const readerOptions: ReaderOptions = readerOptionsFrom(readerArgs, kind, all);
      if (kind === 'disk') {
        readerOptions.name = args.name;
        readerOptions.networks = networks.map((n) => n.to);
      }
      if (kind === 'libvirt') readerOptions.connect = args.connect;
      if (args['verify-timeout'] <= 0 || Number.isNaN(args['verify-timeout'])) {
        throw new UsageError(
          `--verify-timeout ${args['verify-timeout']}: give a number of seconds > 0`,
        );
      }
      if (
        args['appliance-smp'] !== undefined &&
        !(
          Number.isInteger(args['appliance-smp']) &&
          args['appliance-smp'] >= 1 &&
          args['appliance-smp'] <= 16
        )
      ) {
        throw new UsageError(
          `--appliance-smp ${args['appliance-smp']}: give a whole number from 1 to 16`,
        );
      }
      const req: ConvertRequest = {
        source: args.source,
        input: kind,
        readerOptions,
        outputDir: args['output-dir'],
        name: args.name,
        storage: args.storage,
        snapshotDir: args['snapshot-dir'],
        outputFormat: args['output-format'],
        virtio: args.virtio,
        domainType: args['domain-type'],
        accel: args.accel,
        networks,
        withFiles: parseWith(args.with ?? []),
        virtioWin: args['virtio-win'],
        removeVmwareToolsFirstboot: args['remove-vmware-tools-firstboot'],
        initramfs: args.initramfs,
        dryRun: args['dry-run'],
        verifyBoot: args['verify-boot'],
        verifyTimeoutMs: args['verify-timeout'] * 1000,
        connect: args.connect,
        applianceSmp: args['appliance-smp'],
      };
      // Every option is checked before any node is reached.
      Converter.checkRequest(req);
      const run = await createRunContainer(ctx.root, nodeSpecFrom(args), {
        libvirtUri: args.connect,
      });
      const converter = run.resolve<Converter>(TOKENS.Converter);
      const onEvent = eventPrinter(ctx, args.json);
      const result = await converter.convert(req, onEvent).finally(() => onEvent('end'));
      if (args.json) ctx.out(`${JSON.stringify({ event: 'result', ...resultJson(result) })}\n`);
      else ctx.out(formatConvertResult(result));
      if (result.verify && !result.verify.booted) ctx.setExit(1);
    },
  });
}

/** The result without the typed plan (the text plan carries it) for JSON. */
function resultJson(r: ConvertResult): Record<string, unknown> {
  const { planActions: _unused, ...rest } = r;
  return rest;
}

/** Stage lines (and a copy progress bar on a terminal) on stderr, or JSON lines on stdout. */
function eventPrinter(ctx: CliContext, json: boolean): (e: ConvertEvent | 'end') => void {
  const tty = process.stderr.isTTY;
  let bar = false;
  return (e) => {
    if (e === 'end') {
      if (bar) process.stderr.write('\n');
      bar = false;
      return;
    }
    if (json) {
      ctx.out(`${JSON.stringify({ event: e.type, ...e, type: undefined })}\n`);
      return;
    }
    if (e.type === 'progress') {
      if (tty) {
        process.stderr.write(`\r  copy ${progressBar(e.percent, 30)}`);
        bar = true;
      }
      return;
    }
    if (bar) {
      process.stderr.write('\n');
      bar = false;
    }
    if (e.type === 'stage') {
      if (e.state === 'start') ctx.log.info(`${e.stage} ...`);
      else ctx.log.info(`${e.stage} done (${((e.ms ?? 0) / 1000).toFixed(1)} s)`);
    } else if (e.type === 'action') {
      ctx.log.debug(`  ${e.action} (${(e.ms / 1000).toFixed(1)} s)`);
    } else if (e.type === 'warning') {
      ctx.log.warn(e.message);
    }
  };
}
