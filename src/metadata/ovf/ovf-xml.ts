/**
 * XML helpers for OVF descriptors: namespace-prefix stripping by local name, child and attribute
 * access on the parsed element tree, and whole-number and allocation-unit parsing.
 */
import { MetadataError } from '../../errors.js';
import { asArray, attr, textOf } from '../../formats/xml.js';

export type El = Record<string, unknown>;

export function localName(key: string): string {
  const i = key.indexOf(':');
  return i < 0 ? key : key.slice(i + 1);
}

/** Strips namespace prefixes from element and attribute names (xmlns declarations are kept). */
export function stripPrefixes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripPrefixes);
  if (!value || typeof value !== 'object') return value;
  const out = Object.create(null) as El;
  for (const [key, v] of Object.entries(value as El)) {
    let k = key;
    if (key.startsWith('@_')) {
      if (!key.startsWith('@_xmlns')) k = `@_${localName(key.slice(2))}`;
    } else if (key !== '#text') {
      k = localName(key);
    }
    const sv = stripPrefixes(v);
    if (k in out) {
      if (k.startsWith('@_') || k === '#text') continue;
      out[k] = [...asArray(out[k]), ...asArray(sv)];
    } else {
      out[k] = sv;
    }
  }
  return out;
}

export function isEl(v: unknown): v is El {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The child elements called `name` (empty elements, parsed as strings, become `{}`). */
export function kids(el: El | undefined, name: string): El[] {
  if (!el) return [];
  return asArray(el[name]).map((v) => (isEl(v) ? v : (Object.create(null) as El)));
}

export function kid(el: El | undefined, name: string): El | undefined {
  return kids(el, name)[0];
}

/** The trimmed text of the first child `name`, undefined when absent or empty. */
export function textIn(el: El | undefined, name: string): string | undefined {
  if (!el) return undefined;
  const t = textOf(asArray(el[name])[0])?.trim();
  return t === '' ? undefined : t;
}

export function attrOf(el: El | undefined, name: string): string | undefined {
  const v = attr(el, name)?.trim();
  return v === '' ? undefined : v;
}

/** A whole number (negative or huge ones too: validateGuest judges the bounds). */
export function wholeNumber(text: string, what: string, file: string): number {
  if (!/^[+-]?\d+$/.test(text)) {
    throw new MetadataError(file, `${what} ${JSON.stringify(text)} is not a whole number`);
  }
  return Number(text);
}

/**
 * The multiplier of a DSP0004 programmatic unit (`byte * 2^20`, `byte`, `byte * 10^9`) or of the
 * OVF 1.0 words VirtualBox and old exporters write (`MegaBytes`, `KB`). Undefined when unknown.
 */
export function unitMultiplier(units: string): number | undefined {
  const u = units.toLowerCase().replace(/\s+/g, '');
  const words: Record<string, number> = {
    byte: 1,
    bytes: 1,
    b: 1,
    kilobytes: 2 ** 10,
    kb: 2 ** 10,
    kib: 2 ** 10,
    megabytes: 2 ** 20,
    mb: 2 ** 20,
    mib: 2 ** 20,
    gigabytes: 2 ** 30,
    gb: 2 ** 30,
    gib: 2 ** 30,
    terabytes: 2 ** 40,
    tb: 2 ** 40,
    tib: 2 ** 40,
  };
  const word = words[u];
  if (word !== undefined) return word;
  const power = /^bytes?\*(\d+)\^(\d+)$/.exec(u);
  if (power) {
    const base = Number(power[1]);
    const exp = Number(power[2]);
    if ((base === 2 && exp <= 60) || (base === 10 && exp <= 18)) return base ** exp;
    return undefined;
  }
  const factor = /^bytes?\*(\d+)$/.exec(u);
  if (factor) return Number(factor[1]);
  return undefined;
}
