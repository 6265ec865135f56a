/**
 * `v2v-load image info|copy|cow|find`: the storage layer on a node (local or `--host`).
 * Formats are never guessed by qemu-img: given with an option, or read from the file's magic
 * here (and then the backing-file policy applies: only the image's own directory and the
 * `--allow-dir` directories may hold backing files).
 */
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { UsageError } from '../../errors.js';
import type { Node } from '../../node/node.js';
import {
  IMAGE_FORMATS,
  type ImageFormat,
  type ImageRef,
  sniffFormat,
} from '../../storage/image-format.js';
import { CopyMode, CowMode, runMode } from '../../storage/modes/index.js';
import { type ProgressEvent, QemuImg } from '../../storage/qemu-img.js';
import { doesImageExist, imageSize } from '../../storage/repository.js';
import type { CliContext, GlobalArgs } from '../context.js';
import { type NodeArgs, nodeSpecFrom, withNodeOptions } from '../node-options.js';

interface ImageArgs extends GlobalArgs, NodeArgs {
  'allow-dir'?: string[] | undefined;
}
interface InfoArgs extends ImageArgs {
  path: string;
  format?: ImageFormat | undefined;
}
interface CopyArgs extends ImageArgs {
  src: string;
  dst: string;
  format: ImageFormat;
  'source-format'?: ImageFormat | undefined;
}
interface CowArgs extends ImageArgs {
  master: string;
  dst: string;
  'master-format'?: ImageFormat | undefined;
}
interface FindArgs extends ImageArgs {
  name: string;
  datastore: string;
  repository?: string | undefined;
}

const MiB = 1024 * 1024;

function absolute(p: string, option: string): string {
  if (!path.isAbsolute(p)) {
    throw new UsageError(`${option} '${p}': give an absolute path on the node`);
  }
  return p;
}

async function nodeFor(ctx: CliContext, args: NodeArgs): Promise<Node> {
  const run = await createRunContainer(ctx.root, nodeSpecFrom(args));
  return run.resolve<Node>(TOKENS.Node);
}

function qemuFor(node: Node, args: ImageArgs, ...dirs: string[]): QemuImg {
  return new QemuImg(node, [
    ...dirs,
    ...(args['allow-dir'] ?? []).map((d) => absolute(d, '--allow-dir')),
  ]);
}

async function refOf(node: Node, file: string, format: ImageFormat | undefined): Promise<ImageRef> {
  return { path: file, format: format ?? (await sniffFormat(node, file)) };
}

/**
 * A progress reporter: JSON lines on stdout with --json, a bar on stderr when it is a
 * terminal, nothing otherwise.
 */
export function progressReporter(
  ctx: CliContext,
  json: boolean,
  stderr: NodeJS.WriteStream = process.stderr,
): { onProgress: (e: ProgressEvent) => void; end: () => void } {
  if (json) {
    return {
      onProgress: (e) => ctx.out(`${JSON.stringify({ event: 'progress', percent: e.percent })}\n`),
      end: () => {},
    };
  }
  if (!stderr.isTTY) return { onProgress: () => {}, end: () => {} };
  let drawn = false;
  return {
    onProgress: (e) => {
      stderr.write(`\r${progressBar(e.percent, 30)}`);
      drawn = true;
    },
    end: () => {
      if (drawn) stderr.write('\n');
    },
  };
}

/** `[#######-------]  45.00%` */
export function progressBar(percent: number, width: number): string {
  const p = Math.min(100, Math.max(0, percent));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${p.toFixed(2).padStart(6)}%`;
}

function withAllowDir<T>(y: Argv<T>): Argv<T & ImageArgs> {
  return withNodeOptions(y).option('allow-dir', {
    type: 'string',
    array: true,
    describe: "a directory backing files may be in (besides the image's own); repeatable",
  }) as Argv<T & ImageArgs>;
}

function infoCommand(ctx: CliContext): CommandModule<GlobalArgs, InfoArgs> {
  return {
    command: 'info <path>',
    describe: 'format, virtual and actual size, backing chain of an image',
    builder: (y) =>
      withAllowDir(y)
        .positional('path', { type: 'string', describe: 'the image on the node' })
        .option('format', {
          alias: 'f',
          choices: IMAGE_FORMATS,
          describe: 'the image format (default: from its first bytes)',
        }) as never,
    handler: async (args) => {
      const file = absolute(args.path, 'PATH');
      const node = await nodeFor(ctx, args);
      const q = qemuFor(node, args);
      const chain = await q.infoChain(await refOf(node, file, args.format));
      const top = chain[0];
      if (!top) return;
      const actual = chain.reduce((s, i) => s + i.actualBytes, 0);
      if (args.json) {
        ctx.out(
          `${JSON.stringify({
            path: top.path,
            format: top.format,
            virtualBytes: top.virtualBytes,
            actualBytes: actual,
            chain: chain.map((c) => ({
              path: c.path,
              format: c.format,
              virtualBytes: c.virtualBytes,
              actualBytes: c.actualBytes,
            })),
          })}\n`,
        );
        return;
      }
      ctx.out(
        [
          `image:    ${top.path}`,
          `format:   ${top.format}`,
          `virtual:  ${top.virtualBytes} bytes (${(top.virtualBytes / MiB).toFixed(1)} MiB)`,
          `actual:   ${actual} bytes (${Math.ceil(actual / MiB)} MiB, whole chain)`,
          `chain:    ${chain.map((c) => `${c.path} (${c.format})`).join(' -> ')}`,
          '',
        ].join('\n'),
      );
    },
  };
}

function copyCommand(ctx: CliContext): CommandModule<GlobalArgs, CopyArgs> {
  return {
    command: 'copy <src> <dst>',
    describe: 'convert an image to a new file (temporary name, renamed when complete)',
    builder: (y) =>
      withAllowDir(y)
        .positional('src', { type: 'string', describe: 'the source image' })
        .positional('dst', { type: 'string', describe: 'the new image (must not exist)' })
        .option('format', {
          alias: 'O',
          choices: ['qcow2', 'raw'] as const,
          default: 'qcow2' as ImageFormat,
          describe: 'the output format',
        })
        .option('source-format', {
          alias: 'f',
          choices: IMAGE_FORMATS,
          describe: 'the source format (default: from its first bytes)',
        }) as never,
    handler: async (args) => {
      const src = absolute(args.src, 'SRC');
      const dst = absolute(args.dst, 'DST');
      const node = await nodeFor(ctx, args);
      const q = qemuFor(node, args);
      const progress = progressReporter(ctx, args.json);
      const out = await runMode(new CopyMode(), q, {
        source: await refOf(node, src, args['source-format']),
        target: { path: dst, format: args.format },
        onProgress: progress.onProgress,
      }).finally(progress.end);
      ctx.out(
        args.json
          ? `${JSON.stringify({ event: 'done', path: out.path, format: out.format })}\n`
          : `${out.path} (${out.format})\n`,
      );
    },
  };
}

function cowCommand(ctx: CliContext): CommandModule<GlobalArgs, CowArgs> {
  return {
    command: 'cow <master> <dst>',
    describe: 'create a qcow2 copy-on-write image over a master',
    builder: (y) =>
      withAllowDir(y)
        .positional('master', { type: 'string', describe: 'the master image' })
        .positional('dst', { type: 'string', describe: 'the new overlay (must not exist)' })
        .option('master-format', {
          alias: 'F',
          choices: IMAGE_FORMATS,
          describe: 'the master format (default: from its first bytes)',
        }) as never,
    handler: async (args) => {
      const master = absolute(args.master, 'MASTER');
      const dst = absolute(args.dst, 'DST');
      const node = await nodeFor(ctx, args);
      const q = qemuFor(node, args);
      const out = await runMode(new CowMode(), q, {
        source: await refOf(node, master, args['master-format']),
        target: { path: dst, format: 'qcow2' },
      });
      ctx.out(
        args.json
          ? `${JSON.stringify({ path: out.path, format: out.format, backing: master })}\n`
          : `${out.path} (qcow2 over ${master})\n`,
      );
    },
  };
}

function findCommand(ctx: CliContext): CommandModule<GlobalArgs, FindArgs> {
  return {
    command: 'find <name>',
    describe: 'find an image by exact name: the datastore first, then the repository',
    builder: (y) =>
      withAllowDir(y)
        .positional('name', {
          type: 'string',
          describe: 'the image name, e.g. vmwarewinxp-base234-v23',
        })
        .option('datastore', {
          type: 'string',
          demandOption: true,
          describe: 'the datastore directory',
        })
        .option('repository', {
          type: 'string',
          describe: 'the image repository directory',
        }) as never,
    handler: async (args) => {
      const datastore = absolute(args.datastore, '--datastore');
      const repository = args.repository ? absolute(args.repository, '--repository') : undefined;
      const node = await nodeFor(ctx, args);
      const found = await doesImageExist(node, { datastore, repository, image: args.name });
      if (!found) {
        ctx.out(
          args.json
            ? `${JSON.stringify({ name: args.name, found: false })}\n`
            : `${args.name}: not found\n`,
        );
        ctx.setExit(1);
        return;
      }
      const q = qemuFor(node, args, datastore, ...(repository ? [repository] : []));
      const size = await imageSize(q, found.entry);
      if (args.json) {
        ctx.out(`${JSON.stringify({ name: args.name, found: true, ...found, size })}\n`);
        return;
      }
      ctx.out(
        [
          `${args.name}: in the ${found.where}`,
          `entry:    ${found.entry.path} (${found.entry.format})`,
          `files:    ${found.files.join(', ')}`,
          `size:     ${size.bytes} bytes (${size.mib} MiB), virtual ${size.virtualBytes} bytes`,
          '',
        ].join('\n'),
      );
    },
  };
}

/** `v2v-load image ...` */
export function imageCommand(ctx: CliContext): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: 'image <command>',
    describe: 'disk images on a node: info, copy, cow, find',
    builder: (y) =>
      y
        .command(infoCommand(ctx) as never)
        .command(copyCommand(ctx) as never)
        .command(cowCommand(ctx) as never)
        .command(findCommand(ctx) as never)
        .demandCommand(1, 'give an image command: info, copy, cow or find')
        .example('$0 image info /var/lib/libvirt/images/web.qcow2 --json', 'format, sizes, chain')
        .example('$0 image copy /src/disk.vmdk /images/disk.qcow2', 'convert with a progress bar')
        .example('$0 image cow /images/base-v3.qcow2 /vms/pc1_12-v3.qcow2', 'a VM overlay')
        .example(
          '$0 image find base-v3 --datastore /images --repository /repo --host ssh://root@node1',
          'where an image is, its files and size',
        ) as never,
    handler: () => {},
  };
}
