/**
 * The empty registry hive the Windows guest fixtures grow their SYSTEM and SOFTWARE hives from
 * (test/fixtures/windows-guest/empty_hive.py, written from the regf format's description, so
 * the fixtures need nothing outside the repository): hivex opens it (signature, version,
 * checksum, hive bin, root cell), it holds one empty root key, `hivexregedit --merge` grows it,
 * and it is the same at every run. Its bytes (a hex dump) and hivexml's dump are golden files.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportHive } from '../harness/hive-export.js';

const exec = promisify(execFile);
const GENERATOR = path.resolve(import.meta.dirname, '../fixtures/windows-guest/empty_hive.py');
const GOLDEN = path.resolve(import.meta.dirname, '../golden/fixtures');

let dir: string;

async function generate(name: string, ...args: string[]): Promise<string> {
  const out = path.join(dir, name);
  await exec('/usr/bin/python3', ['-B', GENERATOR, out, ...args]);
  return out;
}

/** hivexml's dump of `hive`: it opens /dev/stdout by name, so its output goes to a file. */
async function hivexml(hive: string): Promise<string> {
  const out = `${hive}.xml`;
  const fh = await fs.open(out, 'w');
  try {
    const code = await new Promise<number | string>((resolve) => {
      const child = spawn('hivexml', [hive], { stdio: ['ignore', fh.fd, 'inherit'] });
      child.on('error', (e) => resolve(e.message));
      child.on('exit', (c, sig) => resolve(sig ?? c ?? 1));
    });
    expect(code).toBe(0);
  } finally {
    await fh.close();
  }
  return fs.readFile(out, 'utf8');
}

/** A hex dump, 16 bytes a line, a run of zero lines shown once as `*` (as `xxd -a`). */
function hexdump(data: Buffer): string {
  const lines: string[] = [];
  for (let off = 0; off < data.length; off += 16) {
    const row = data.subarray(off, off + 16);
    if (row.every((b) => b === 0) && off > 0 && off + 16 < data.length) {
      if (lines.at(-1) !== '*') lines.push('*');
      continue;
    }
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'));
    lines.push(`${off.toString(16).padStart(8, '0')}: ${hex}  ${text.join('')}`);
  }
  return `${lines.join('\n')}\n`;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-empty-hive-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('empty registry hive generator', () => {
  it('writes an 8 KiB hive that hivex reads: one root key, no subkeys, no values', async () => {
    const hive = await generate('EMPTY');
    const data = await fs.readFile(hive);
    expect(data.length).toBe(8192);
    await expect(hexdump(data)).toMatchFileSnapshot(path.join(GOLDEN, 'empty-hive.hex'));
    // base block: "regf", sequence numbers equal, version 1.5, primary file, XOR-32 checksum
    expect(data.toString('latin1', 0, 4)).toBe('regf');
    expect(data.readUInt32LE(4)).toBe(data.readUInt32LE(8));
    expect([data.readUInt32LE(20), data.readUInt32LE(24), data.readUInt32LE(28)]).toEqual([
      1, 5, 0,
    ]);
    let sum = 0;
    for (let i = 0; i < 508; i += 4) sum ^= data.readUInt32LE(i);
    expect(data.readUInt32LE(508)).toBe(sum >>> 0);
    expect(data.toString('latin1', 4096, 4100)).toBe('hbin');
    const xml = await hivexml(hive);
    await expect(xml).toMatchFileSnapshot(path.join(GOLDEN, 'empty-hive.hivexml.xml'));
    const keys = await exportHive(hive, 'SYSTEM');
    expect([...keys.keys()]).toEqual(['HKLM\\SYSTEM\\']);
    expect(keys.get('HKLM\\SYSTEM\\')?.size).toBe(0);
    const { stdout: ls } = await exec('hivexget', [hive, '\\']);
    expect(ls).toBe('');
  });

  it('is the same at every run, and names its root key as asked', async () => {
    const a = await fs.readFile(await generate('A'));
    const b = await fs.readFile(await generate('B'));
    expect(a.equals(b)).toBe(true);
    const xml = await hivexml(await generate('NAMED', 'CMI-CreateHive'));
    expect(xml).toContain('<node name="CMI-CreateHive" root="1">');
  });

  it('grows with hivexregedit --merge: keys under keys, values of each type', async () => {
    const hive = await generate('SYSTEM');
    const reg = path.join(dir, 'system.reg');
    const text = (s: string) =>
      Buffer.from(`${s}\0`, 'utf16le').toString('hex').replace(/../g, '$&,').slice(0, -1);
    await fs.writeFile(
      reg,
      [
        '[\\Select]',
        '"Current"=dword:00000001',
        '',
        '[\\ControlSet001]',
        '',
        '[\\ControlSet001\\Services]',
        '',
        '[\\ControlSet001\\Services\\VMTools]',
        '"Start"=dword:00000002',
        `"ImagePath"=hex(2):${text('%SystemRoot%\\vmtools.exe')}`,
        '',
      ].join('\n'),
    );
    await exec('hivexregedit', ['--merge', hive, reg]);
    const keys = await exportHive(hive, 'SYSTEM');
    expect([...keys.keys()].sort()).toEqual([
      'HKLM\\SYSTEM\\',
      'HKLM\\SYSTEM\\ControlSet001',
      'HKLM\\SYSTEM\\ControlSet001\\Services',
      'HKLM\\SYSTEM\\ControlSet001\\Services\\VMTools',
      'HKLM\\SYSTEM\\Select',
    ]);
    expect(
      Object.fromEntries(keys.get('HKLM\\SYSTEM\\ControlSet001\\Services\\VMTools') ?? []),
    ).toEqual({
      '"Start"': 'dword:00000002',
      '"ImagePath"': 'expand_sz:"%SystemRoot%\\\\vmtools.exe"',
    });
    const { stdout } = await exec('hivexget', [hive, '\\Select', 'Current']);
    expect(stdout.trim()).toBe('1');
  });
});
