/**
 * Windows registry values as the conversion plans them: typed values, their bytes in a hive
 * (hivex: UTF-16LE strings, little-endian DWORDs), and their text for the plan and the report.
 * Key and value names compare case-insensitively, as Windows does.
 */

/** The hives a conversion edits, by their name under HKLM. */
export type HiveName = 'SYSTEM' | 'SOFTWARE';

export type RegValue =
  | { type: 'sz' | 'expand_sz'; value: string }
  | { type: 'dword'; value: number }
  | { type: 'multi_sz'; value: string[] }
  /** Bytes as lower-case hex. */
  | { type: 'binary'; value: string }
  /** Any other type, kept as read (hex). */
  | { type: 'other'; code: number; value: string };

/** One key as read: its values (by their stored names) and the names of its subkeys. */
export interface RegKey {
  values: Record<string, RegValue>;
  subkeys: string[];
}

/** Reads registry keys of a hive file in the guest. */
export interface RegistryReader {
  /**
   * The keys at `keys` (paths below the hive root) in the hive file `hive` (a guest path), in
   * order; undefined for a key that does not exist.
   */
  regKeys(hive: string, keys: readonly (readonly string[])[]): Promise<(RegKey | undefined)[]>;
}

/** hivex's value type numbers. */
export const REG_TYPE = { sz: 1, expand_sz: 2, binary: 3, dword: 4, multi_sz: 7 } as const;

export const sz = (value: string): RegValue => ({ type: 'sz', value });
export const expandSz = (value: string): RegValue => ({ type: 'expand_sz', value });
export const dword = (value: number): RegValue => ({ type: 'dword', value });
export const multiSz = (...value: string[]): RegValue => ({ type: 'multi_sz', value });
export const binary = (hex: string): RegValue => ({ type: 'binary', value: hex.toLowerCase() });

function utf16(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf16le');
}

function fromUtf16(b: Buffer): string {
  const s = b.toString('utf16le', 0, b.length - (b.length % 2));
  const nul = s.indexOf('\0');
  return nul >= 0 ? s.slice(0, nul) : s;
}

/** A value's type number and bytes, as hivex stores them. */
export function encodeRegValue(v: RegValue): { type: number; data: Buffer } {
  switch (v.type) {
    case 'sz':
    case 'expand_sz':
      return { type: REG_TYPE[v.type], data: utf16(v.value) };
    case 'dword': {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v.value >>> 0);
      return { type: REG_TYPE.dword, data: b };
    }
    case 'multi_sz':
      return {
        type: REG_TYPE.multi_sz,
        data: Buffer.concat([...v.value.map(utf16), Buffer.from([0, 0])]),
      };
    case 'binary':
      return { type: REG_TYPE.binary, data: Buffer.from(v.value, 'hex') };
    case 'other':
      return { type: v.code, data: Buffer.from(v.value, 'hex') };
  }
}

/** A value from its type number and bytes. */
export function decodeRegValue(type: number, data: Buffer): RegValue {
  switch (type) {
    case REG_TYPE.sz:
      return { type: 'sz', value: fromUtf16(data) };
    case REG_TYPE.expand_sz:
      return { type: 'expand_sz', value: fromUtf16(data) };
    case REG_TYPE.dword:
      if (data.length === 4) return { type: 'dword', value: data.readUInt32LE() };
      break;
    case REG_TYPE.multi_sz: {
      const s = data.toString('utf16le', 0, data.length - (data.length % 2));
      return { type: 'multi_sz', value: s.split('\0').filter((x) => x !== '') };
    }
    case REG_TYPE.binary:
      return { type: 'binary', value: data.toString('hex') };
  }
  return { type: 'other', code: type, value: data.toString('hex') };
}

/** True when two values are the same type and content. */
export function sameRegValue(a: RegValue | undefined, b: RegValue | undefined): boolean {
  if (!a || !b) return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A value as text: `dword:4`, `sz:"atapi"`, `multi_sz:["a", "b"]`, `binary:01ff0000`. */
export function formatRegValue(v: RegValue): string {
  switch (v.type) {
    case 'dword':
      return `dword:${v.value}`;
    case 'sz':
    case 'expand_sz':
      return `${v.type}:"${v.value}"`;
    case 'multi_sz':
      return `multi_sz:[${v.value.map((x) => `"${x}"`).join(', ')}]`;
    case 'binary':
      return `binary:${v.value}`;
    case 'other':
      return v.code === 0 ? `none:${v.value}` : `type${v.code}:${v.value}`;
  }
}

/** A value of a key by name, case-insensitively. */
export function regValueOf(key: RegKey | undefined, name: string): RegValue | undefined {
  if (!key) return undefined;
  const lc = name.toLowerCase();
  for (const [n, v] of Object.entries(key.values)) if (n.toLowerCase() === lc) return v;
  return undefined;
}

/** A key path for people: `HKLM\SYSTEM\ControlSet001\Services\vmci`. */
export function regPath(hive: HiveName, key: readonly string[]): string {
  return ['HKLM', hive, ...key].join('\\');
}
