/**
 * Parsing untrusted XML (OVF, libvirt domain XML): well-formedness checked with line numbers,
 * no DTD, no entity declarations (external entities and expansion bombs are refused, never
 * expanded), attributes kept with an `@_` prefix.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { MetadataError } from '../errors.js';

const MAX_XML_BYTES = 64 * 1024 * 1024;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The five predefined XML entities and numeric character references, nothing else. */
export function decodeXmlText(value: string): string {
  return value.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(
          e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)),
        );
    }
  });
}

/**
 * Parses `text` (read from `file`) into plain objects. Element text is under `#text` when the
 * element also has attributes; a repeated element becomes an array (use {@link asArray}).
 * Entity references other than the predefined ones stay as written.
 */
export function parseUntrustedXml(text: string, file: string): Record<string, unknown> {
  if (text.length > MAX_XML_BYTES) {
    throw new MetadataError(file, `XML larger than ${MAX_XML_BYTES} bytes refused`);
  }
  if (text.trim() === '') throw new MetadataError(file, 'empty file, expected XML');
  if (text.includes('\0')) throw new MetadataError(file, 'binary data, expected XML');
  const doctype = /<!DOCTYPE/i.exec(text);
  if (doctype) {
    const hasEntities = /<!ENTITY/i.test(text);
    throw new MetadataError(
      file,
      hasEntities
        ? 'XML entity declarations are not accepted (external entities and entity expansion are refused)'
        : 'a DOCTYPE is not accepted in this XML',
      { line: lineOf(text, doctype.index) },
    );
  }
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: true });
  if (valid !== true) {
    throw new MetadataError(file, `malformed XML: ${valid.err.msg}`, { line: valid.err.line });
  }
  try {
    return parser.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new MetadataError(file, `XML refused: ${(e as Error).message}`, { cause: e });
  }
}

/** An element that may occur once or many times, as an array. */
export function asArray<T>(value: T | T[] | undefined | null): T[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** The text of an element, whether parsed as a string or as `{ '#text': ... }`. */
export function textOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' || typeof value === 'number') return decodeXmlText(String(value));
  if (typeof value === 'object' && '#text' in (value as object)) {
    return decodeXmlText(String((value as Record<string, unknown>)['#text']));
  }
  return undefined;
}

/** An attribute's value (decoded), or undefined. */
export function attr(element: unknown, name: string): string | undefined {
  if (!element || typeof element !== 'object') return undefined;
  const v = (element as Record<string, unknown>)[`@_${name}`];
  return v === undefined ? undefined : decodeXmlText(String(v));
}
