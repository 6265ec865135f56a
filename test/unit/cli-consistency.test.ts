/**
 * The command line is one tool: the same option means the same thing everywhere, a usage error
 * is found before any node is reached, and the README documents every option.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { TOKENS } from '../../src/di/tokens.js';
import type { Node } from '../../src/node/node.js';
import { NodeFactory } from '../../src/node/node-factory.js';
import type { NodeSpec } from '../../src/node/node-spec.js';
import { DEFAULT_LIBVIRT_URI } from '../../src/provisioning/libvirt/virsh.js';
import { cli } from '../harness/cli.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Every command and subcommand of v2v-load, as its --help lists them. */
async function commands(): Promise<string[][]> {
  const top = await help([]);
  const out: string[][] = [];
  for (const [, name] of top.matchAll(/^\s+v2v-load (\S+)/gm)) {
    if (name === undefined) continue;
    if (name !== 'image') {
      out.push([name]);
      continue;
    }
    const image = await help(['image']);
    for (const [, sub] of image.matchAll(/^\s+v2v-load image (\w+)/gm)) {
      if (sub !== undefined) out.push(['image', sub]);
    }
  }
  return out;
}

async function help(cmd: string[]): Promise<string> {
  const r = await cli(...cmd, '--help');
  expect(r.status).toBe(0);
  return r.stdout;
}

/** The options a help text lists: `--name` words at the start of an option line. */
function optionsIn(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^\s+((?:-\w, )*)--([a-z][\w-]*)/.exec(line);
    if (m?.[2]) out.add(m[2]);
  }
  return [...out].sort();
}

/**
 * A help text's entries: an option or positional line with its continuation lines (yargs wraps
 * at its width, inside words too: the line break and the padding after it are not text).
 */
function entries(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const last = out.length - 1;
    if (last >= 0 && /^\s{8,}\S/.test(line) && !/^\s+-/.test(line)) {
      out[last] = `${out[last]}${line.trimStart()}`;
    } else out.push(line);
  }
  return out;
}

/** The entry of `--name` in a help text, with its aliases and description. */
function optionLine(text: string, name: string): string {
  const line = entries(text).find((l) => new RegExp(`^\\s+(-\\w, )*--${name}\\b`).test(l));
  if (line === undefined) throw new Error(`--${name} is not in the help text`);
  return line;
}

describe('one meaning per option', () => {
  it('finds every command in --help', async () => {
    const all = (await commands()).map((c) => c.join(' '));
    expect(all).toEqual(
      expect.arrayContaining([
        'doctor',
        'domain',
        'inspect',
        'image info',
        'image copy',
        'image cow',
        'image find',
      ]),
    );
  });

  it('-c is --connect on every command that takes --connect, with the one default URI', async () => {
    const withConnect: string[] = [];
    const all = await commands();
    for (const cmd of all) {
      const text = await help(cmd);
      if (!optionsIn(text).includes('connect')) continue;
      withConnect.push(cmd.join(' '));
      expect(optionLine(text, 'connect'), cmd.join(' ')).toMatch(/^\s+-c, --connect\b/);
      expect(text, cmd.join(' ')).toContain(DEFAULT_LIBVIRT_URI);
    }
    expect(withConnect).toEqual(expect.arrayContaining(['doctor', 'domain', 'inspect']));
    // -c is --connect, never anything else.
    for (const cmd of all) {
      const text = await help(cmd);
      const c = text.split('\n').filter((l) => /^\s+-c, /.test(l));
      expect(
        c.every((l) => /^\s+-c, --connect\b/.test(l)),
        cmd.join(' '),
      ).toBe(true);
    }
  });

  it('--format is the format written; --source-format (-f) the format read', async () => {
    const formats: Record<string, string[]> = {};
    for (const cmd of await commands()) {
      const o = optionsIn(await help(cmd));
      formats[cmd.join(' ')] = o.filter((x) => x === 'format' || x === 'source-format');
    }
    expect(formats).toMatchObject({
      doctor: [],
      domain: [],
      inspect: [],
      'image info': ['source-format'],
      'image copy': ['format', 'source-format'],
      'image cow': ['source-format'],
      'image find': [],
    });
    for (const [cmd, o] of Object.entries(formats)) {
      const text = await help(cmd.split(' '));
      if (o.includes('format')) expect(optionLine(text, 'format'), cmd).toMatch(/output format/);
      if (o.includes('source-format')) {
        expect(optionLine(text, 'source-format'), cmd).toMatch(/^\s+-f, --source-format\s/);
      }
    }
    const copy = await help(['image', 'copy']);
    expect(optionLine(copy, 'format')).toMatch(/^\s+-O, --format\s+the output format/);
    for (const cmd of [
      ['image', 'info'],
      ['image', 'copy'],
      ['image', 'cow'],
    ]) {
      expect(optionLine(await help(cmd), 'source-format'), cmd.join(' ')).toMatch(
        /^\s+-f, --source-format\s/,
      );
    }
    const info = await cli('image', 'info', '/a.qcow2', '--format', 'qcow2');
    expect(info.status).toBe(2);
    expect(info.stderr).toContain('Unknown argument: format');
  });

  it('every image path that must be absolute says so in --help', async () => {
    const absolute: Record<string, string[]> = {
      'image info': ['path', '--allow-dir'],
      'image copy': ['src', 'dst', '--allow-dir'],
      'image cow': ['master', 'dst', '--allow-dir'],
      'image find': ['--datastore', '--repository', '--allow-dir'],
    };
    for (const [cmd, names] of Object.entries(absolute)) {
      const text = await help(cmd.split(' '));
      for (const name of names) {
        const entry = name.startsWith('--')
          ? optionLine(text, name.slice(2))
          : entries(text).find((l) => new RegExp(`^\\s+${name}\\s`).test(l));
        expect(entry, `${cmd} ${name}`).toMatch(/absolute path on the node/);
      }
    }
  });

  it('the README lists every option of every command', async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const missing: string[] = [];
    for (const cmd of await commands()) {
      for (const o of optionsIn(await help(cmd))) {
        if (o === 'help' || o === 'version') continue;
        if (!new RegExp(`--${o}\\b`).test(readme)) missing.push(`${cmd.join(' ')} --${o}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('the CLI has no `as never` cast', () => {
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts') && fs.readFileSync(p, 'utf8').includes('as never')) {
          found.push(path.relative(ROOT, p));
        }
      }
    };
    walk(path.join(ROOT, 'src/cli'));
    expect(found).toEqual([]);
  });

  it('each image subcommand is its own file', async () => {
    const dir = path.join(ROOT, 'src/cli/commands/image');
    for (const sub of ['info', 'copy', 'cow', 'find']) {
      const text = fs.readFileSync(path.join(dir, `${sub}.ts`), 'utf8');
      expect(text, sub).toMatch(new RegExp(`command: '${sub} `));
    }
  });
});

/** A node factory that records every node asked for, and reaches none. */
class RecordingNodeFactory extends NodeFactory {
  readonly asked: NodeSpec[] = [];
  override async get(spec: NodeSpec = {}): Promise<Node> {
    this.asked.push(spec);
    throw new Error('a node was asked for');
  }
}

describe('a usage error exits 2 before any connection is made', () => {
  const host = ['--host', 'ssh://root@127.0.0.1:1'];
  it.each([
    [['image', 'info', 'disk.qcow2'], "PATH 'disk.qcow2': give an absolute path"],
    [['image', 'info', '/d.qcow2', '--allow-dir', 'rel'], "--allow-dir 'rel': give an absolute"],
    [['image', 'copy', '/a.raw', 'b.qcow2'], "DST 'b.qcow2': give an absolute path"],
    [['image', 'cow', '/m.qcow2', '/o.qcow2', '--allow-dir', 'x'], "--allow-dir 'x'"],
    [['image', 'find', 'x-v1', '--datastore', 'ds'], "--datastore 'ds': give an absolute"],
    [['domain', 'start'], 'give the domain'],
    [['domain', 'snapshot-create', 'web01'], 'snapshot-create: give the snapshot name'],
    [['domain', 'define', '/nonexistent/guest.xml'], 'define /nonexistent/guest.xml: cannot read'],
    [['inspect', '-i', 'libvirt', 'a', 'b'], '-i libvirt takes exactly one domain name'],
    [['inspect', '-i', 'libvirt', 'web', '-c', 'nope'], "--connect 'nope' is not a libvirt URI"],
    [['doctor', '--min-free', 'lots'], "--min-free 'lots': not a size"],
  ])('%j', async (args, message) => {
    const nodes = new RecordingNodeFactory();
    let stderr = '';
    const status = await main(
      [...args, ...host],
      { stdout: () => {}, stderr: (t) => (stderr += t) },
      { configure: (root) => root.register(TOKENS.NodeFactory, { useValue: nodes }) },
    );
    expect(stderr).toContain(message);
    expect(status).toBe(2);
    expect(nodes.asked).toEqual([]);
  });
});
