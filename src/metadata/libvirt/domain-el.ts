/**
 * Element helpers shared by the libvirt domain XML parser: a parsed element as a plain object,
 * its children, trimmed text and numeric attributes, and own-key table lookups.
 */
import { asArray, attr, textOf } from '../../formats/xml.js';

/** A parsed element: attributes under `@_name`, children by name, text under `#text`. */
export type El = Record<string, unknown>;

/** Any element (or an empty/text-only one) as an object. */
export function asEl(value: unknown): El {
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as El;
  if (typeof value === 'string' && value !== '') return { '#text': value };
  return {};
}

export function children(parent: El | undefined, name: string): El[] {
  return parent ? asArray(parent[name]).map(asEl) : [];
}

export function child(parent: El | undefined, name: string): El | undefined {
  return children(parent, name)[0];
}

export function has(parent: El | undefined, name: string): boolean {
  return parent !== undefined && parent[name] !== undefined;
}

export function textIn(parent: El | undefined, name: string): string | undefined {
  const t = textOf(parent?.[name] === undefined ? undefined : child(parent, name));
  const trimmed = t?.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** Parses a non-negative decimal integer attribute; undefined when absent or not a number. */
export function intAttr(element: El | undefined, name: string): number | undefined {
  const v = attr(element, name)?.trim();
  if (v === undefined || !/^\d{1,9}$/.test(v)) return undefined;
  return Number(v);
}

/** `table[key]` for own keys only (an XML value `constructor` must not find Object's). */
export function lookup<T>(table: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}
