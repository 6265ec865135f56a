/**
 * The one parser of libvirt domain XML. The metadata reader (domain XML → neutral guest) and the
 * provisioning domain API (`Domain.describe`, `define`) both start here: the same safe XML
 * parse (no DTD, no entities), the same check that the root is one `<domain>`, the same errors.
 */
import { MetadataError } from '../errors.js';
import { parseUntrustedXml } from './xml.js';

/** A parsed domain document: the whole tree, and its `<domain>` element. */
export interface DomainDocument {
  /** The whole parsed document (`{ domain: {...} }`). */
  tree: Record<string, unknown>;
  /** The `<domain>` element: attributes under `@_name`, children by name, text under `#text`. */
  domain: Record<string, unknown>;
}

/**
 * Parses libvirt domain XML `text` (from `source`, named in every error).
 * @throws MetadataError for hostile or malformed XML, or a root other than one `<domain>`
 */
export function parseDomainDocument(text: string, source: string): DomainDocument {
  let tree: Record<string, unknown>;
  try {
    tree = parseUntrustedXml(text, source);
  } catch (e) {
    if (e instanceof MetadataError) throw e;
    // The parser's own refusals (e.g. a `<__proto__>` element), named too.
    throw new MetadataError(source, `XML refused: ${(e as Error).message}`, { cause: e });
  }
  const roots = Object.keys(tree);
  if (!roots.includes('domain')) {
    const found = roots[0];
    throw new MetadataError(
      source,
      found
        ? `the root element is <${found}>, expected a libvirt <domain>`
        : 'no root element, expected a libvirt <domain>',
    );
  }
  if (roots.length > 1 || Array.isArray(tree.domain)) {
    throw new MetadataError(source, 'more than one root element, expected one libvirt <domain>');
  }
  const d = tree.domain;
  const domain =
    d && typeof d === 'object'
      ? (d as Record<string, unknown>)
      : typeof d === 'string' && d !== ''
        ? { '#text': d }
        : {};
  return { tree, domain };
}
