/**
 * The VMware configuration dictionary (`.vmx`): one `key = "value"` a line, keys compared
 * case-insensitively, `#` comments and blank lines ignored, values quoted with VMware's `|XX`
 * byte escapes (`|22` is `"`, `|7C` is `|`, `|23` is `#`). The text is in the encoding named by
 * `.encoding` (UTF-8 when absent). Anything that is not `key = value` is an error naming the
 * file and line: a .vmx is never guessed at.
 */
import { TextDecoder } from 'node:util';
import { MetadataError } from '../../errors.js';
import { decodeText } from '../../formats/text-encoding.js';

/** One `key = "value"` line. */
export interface VmxEntry {
  /** The key as written. */
  key: string;
  /** The value, quotes removed and escapes decoded. */
  value: string;
  /** 1-based line number. */
  line: number;
}

/** Words VMware reads as booleans. */
const TRUE_WORDS = new Set(['true', 'yes', '1', 'on']);
const FALSE_WORDS = new Set(['false', 'no', '0', 'off']);

/** A parsed .vmx: look-ups by key (any case), with typed getters that name the line on error. */
export class VmxFile {
  constructor(
    /** The file the text came from, for messages. */
    readonly file: string,
    /** Entries by lower-case key. */
    readonly entries: ReadonlyMap<string, VmxEntry>,
    /** The encoding the text was decoded with. */
    readonly encoding: string,
    /** What the parser noticed but accepted (duplicate keys, guessed encoding). */
    readonly notes: readonly string[],
  ) {}

  /** The entry of `key` (any case), or undefined. */
  entry(key: string): VmxEntry | undefined {
    return this.entries.get(key.toLowerCase());
  }

  /** The value of `key`, or undefined when absent. */
  str(key: string): string | undefined {
    return this.entry(key)?.value;
  }

  /** The line of `key`, or undefined when absent. */
  line(key: string): number | undefined {
    return this.entry(key)?.line;
  }

  /** A boolean key (TRUE/FALSE, yes/no, 1/0); undefined when absent. */
  bool(key: string): boolean | undefined {
    const e = this.entry(key);
    if (!e) return undefined;
    const v = e.value.trim().toLowerCase();
    if (TRUE_WORDS.has(v)) return true;
    if (FALSE_WORDS.has(v)) return false;
    throw this.error(e, 'expected TRUE or FALSE');
  }

  /** A whole number key (digits only, no sign); undefined when absent. */
  uint(key: string): number | undefined {
    const e = this.entry(key);
    if (!e) return undefined;
    const v = e.value.trim();
    if (!/^\d+$/.test(v)) throw this.error(e, 'expected a whole number');
    return Number(v);
  }

  /** A MetadataError about entry `e`, naming the file, the line, the key and its value. */
  error(e: VmxEntry, problem: string, hint?: string): MetadataError {
    return new MetadataError(this.file, `${e.key} = "${printable(e.value)}": ${problem}`, {
      line: e.line,
      hint,
    });
  }

  /** Lower-case keys in file order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }
}

/** A value or line shown in a message: control characters escaped, cut at 60 characters. */
export function printable(s: string): string {
  const shown = s.length > 60 ? `${s.slice(0, 60)}...` : s;
  return shown.replace(
    /[\u0000-\u001f\u007f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

const KEY_VALUE = /^([^\s="#]+)\s*=\s*(.*)$/;
const ENCODING_LINE = /^\s*\.encoding\s*=\s*"?([^"\s]*)"?\s*$/im;

/** The 1-based line holding byte/character `index` of `text`. */
function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Decodes the bytes with the file's `.encoding` (UTF-8 when absent). */
function decode(data: Buffer, file: string, notes: string[]): { text: string; encoding: string } {
  // .encoding is ASCII in every encoding VMware writes, so latin1 finds it.
  const latin = data.toString('latin1');
  const m = ENCODING_LINE.exec(latin);
  const label = m?.[1];
  if (m && label !== undefined) {
    const line = lineAt(latin, m.index + (m[0].length - m[0].trimStart().length));
    try {
      new TextDecoder(label);
    } catch {
      throw new MetadataError(file, `.encoding = "${printable(label)}": unknown encoding`, {
        line,
      });
    }
    try {
      return decodeText(data, label, true);
    } catch {
      throw new MetadataError(file, `the text is not valid ${label} (as .encoding says)`, {
        line,
      });
    }
  }
  try {
    return decodeText(data, 'utf-8', true);
  } catch {
    notes.push('no .encoding and not valid UTF-8: read as windows-1252');
    return decodeText(data, 'windows-1252');
  }
}

/** Decodes VMware's `|XX` byte escapes; runs of escaped bytes are decoded with `encoding`. */
export function unescapeVmx(value: string, encoding = 'utf-8'): string {
  return value.replace(/(?:\|[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes = Buffer.from(run.replace(/\|/g, ''), 'hex');
    return decodeText(bytes, encoding).text;
  });
}

/** Refuses inputs that are plainly not a .vmx, before looking at lines. */
function refuseNonVmx(data: Buffer, file: string): void {
  if (data.toString('latin1').trim() === '') {
    throw new MetadataError(file, 'empty file: no VMware configuration in it');
  }
  const head = data.subarray(0, 64).toString('latin1');
  if (head.startsWith('KDMV') || head.startsWith('COWD') || /^# Disk DescriptorFile/.test(head)) {
    throw new MetadataError(file, 'this is a VMDK disk, not a VMware configuration (.vmx)', {
      hint: 'give the .vmx file of the virtual machine, or read the disk with -i disk',
    });
  }
}

/** Finds the first control character a text file never holds, and names its line. */
function refuseBinary(text: string, file: string): void {
  const bad = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(text);
  if (bad) {
    throw new MetadataError(
      file,
      `binary data (byte 0x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')}): not a VMware configuration (.vmx)`,
      { line: lineAt(text, bad.index) },
    );
  }
}

/** The value part of `key = value`: a quoted string (escapes decoded) or a bare word. */
function parseValue(raw: string, file: string, line: number, encoding: string): string {
  if (raw.startsWith('"')) {
    const end = raw.indexOf('"', 1);
    if (end < 0) throw new MetadataError(file, 'unterminated quoted value', { line });
    const rest = raw.slice(end + 1).trim();
    if (rest !== '' && !rest.startsWith('#')) {
      throw new MetadataError(file, `unexpected text after the closing quote: ${printable(rest)}`, {
        line,
      });
    }
    return unescapeVmx(raw.slice(1, end), encoding);
  }
  const bare = raw.trim();
  if (bare.includes('"')) {
    throw new MetadataError(file, `stray quote in value: ${printable(bare)}`, { line });
  }
  return unescapeVmx(bare, encoding);
}

/**
 * Parses the bytes of a .vmx file.
 * @param data the whole file
 * @param file its path, for messages
 * @throws MetadataError naming the file and line for anything that is not `key = value`
 */
export function parseVmx(data: Buffer, file: string): VmxFile {
  refuseNonVmx(data, file);
  const notes: string[] = [];
  const { text, encoding } = decode(data, file, notes);
  refuseBinary(text, file);
  const entries = new Map<string, VmxEntry>();
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((rawLine, i) => {
    const line = i + 1;
    const s = rawLine.replace(/\r$/, '').trim();
    if (s === '' || s.startsWith('#')) return;
    const m = KEY_VALUE.exec(s);
    const key = m?.[1];
    const raw = m?.[2];
    if (!m || key === undefined || raw === undefined) {
      throw new MetadataError(file, `expected key = "value", got: ${printable(s)}`, { line });
    }
    const value = parseValue(raw, file, line, encoding);
    const lower = key.toLowerCase();
    const before = entries.get(lower);
    if (before) {
      notes.push(`duplicate key ${key} on lines ${before.line} and ${line}: the last is used`);
      entries.delete(lower);
    }
    entries.set(lower, { key, value, line });
  });
  if (entries.size === 0) {
    throw new MetadataError(file, 'no key = "value" lines: not a VMware configuration (.vmx)');
  }
  return new VmxFile(file, entries, encoding, notes);
}
