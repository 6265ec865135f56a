/**
 * Windows registry hives read back for tests: `hivexregedit --export` parsed into key → value
 * name → value (strings decoded), and the changes between two exports as text (keys and
 * values sorted), the form of the golden files in test/golden/windows/.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export type HiveExport = Map<string, Map<string, string>>;

/** hivexregedit --export of `file` (a hive mounted at HKLM\<hive>), parsed. */
export async function exportHive(file: string, hive: string): Promise<HiveExport> {
  const { stdout } = await exec(
    'hivexregedit',
    ['--export', '--prefix', `HKLM\\${hive}`, file, '\\'],
    { maxBuffer: 1 << 26 },
  );
  const keys: HiveExport = new Map();
  let cur: Map<string, string> | undefined;
  for (const line of stdout.split('\n')) {
    const k = /^\[(.*)\]$/.exec(line);
    if (k) {
      cur = new Map();
      keys.set(k[1] as string, cur);
      continue;
    }
    const v = /^("(?:[^"\\]|\\.)*"|@)=(.*)$/.exec(line);
    if (v && cur) cur.set(v[1] as string, readable(v[2] as string));
  }
  return keys;
}

function readable(v: string): string {
  const m = /^hex\(([127])\):(.*)$/.exec(v);
  if (!m) return v;
  const bytes = Buffer.from(
    (m[2] as string)
      .split(',')
      .filter(Boolean)
      .map((h) => parseInt(h, 16)),
  );
  const s = bytes.toString('utf16le');
  if (m[1] === '7') return `multi_sz:${JSON.stringify(s.split('\0').filter(Boolean))}`;
  return `${m[1] === '1' ? 'sz' : 'expand_sz'}:${JSON.stringify(s.replace(/\0+$/, ''))}`;
}

/** The registry changes between two exports, key by key, as text. */
export function registryChanges(before: HiveExport, after: HiveExport): string {
  const out: string[] = [];
  for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const b = before.get(key);
    const a = after.get(key);
    if (!a) {
      out.push(`-[${key}]`, '');
      continue;
    }
    const lines: string[] = [];
    for (const name of [...new Set([...(b?.keys() ?? []), ...a.keys()])].sort()) {
      const was = b?.get(name);
      const now = a.get(name);
      if (was === now) continue;
      if (now === undefined) lines.push(`-${name}=${was}`);
      else lines.push(`${name}=${now}${was === undefined ? '' : `  (was ${was})`}`);
    }
    if (!b) out.push(`+[${key}]`, ...lines, '');
    else if (lines.length) out.push(`[${key}]`, ...lines, '');
  }
  return `${out.join('\n')}\n`;
}
