/**
 * The converted guest's domain XML as the target node gets it: its disks at their places in the
 * pool, a UUID of its own when the source's is taken there, and the serial console also logged
 * to a file (libvirt's `<log>` on the pty), so `--verify-boot` can watch the real guest boot
 * while `virsh console` keeps working. Parsed with the safe parser and rebuilt from the tree,
 * never edited as text.
 */
import { XMLBuilder } from 'fast-xml-parser';
import { asArray, decodeXmlText, parseUntrustedXml } from '../formats/xml.js';
import { ImportError } from './errors.js';

type Tree = Record<string, unknown>;

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
});

/** What changes in the XML on its way to the node. */
export interface Placement {
  /** Old disk path → new disk path. */
  disks: Readonly<Record<string, string>>;
  /** The UUID the domain gets. */
  uuid: string;
  /** File the first serial port is also logged to (append). */
  consoleLog: string;
}

/** The parser leaves entities encoded; the builder encodes again: decode every value once. */
function decodeTree(v: unknown): unknown {
  if (typeof v === 'string') return decodeXmlText(v);
  if (Array.isArray(v)) return v.map(decodeTree);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeTree(x)]));
  }
  return v;
}

/** The domain's name, UUID and disk paths. */
export function describePlaced(xml: string): { name: string; uuid?: string; disks: string[] } {
  const domain = parseUntrustedXml(xml, 'domain XML').domain as Tree | undefined;
  if (!domain) throw new ImportError('domain XML: no <domain> element');
  const devices = (domain.devices ?? {}) as Tree;
  const disks = asArray(devices.disk as Tree[] | Tree | undefined)
    .map((d) => ((d.source ?? {}) as Tree)['@_file'])
    .filter((f): f is string => typeof f === 'string')
    .map(decodeXmlText);
  const uuid = domain.uuid === undefined ? undefined : decodeXmlText(String(domain.uuid));
  return { name: decodeXmlText(String(domain.name ?? '')), uuid, disks };
}

/** Rewrites a converted domain XML for its place on the target node. */
export function placeDomainXml(xml: string, p: Placement): string {
  const doc = decodeTree(parseUntrustedXml(xml, 'domain XML')) as Tree;
  const domain = doc.domain as Tree | undefined;
  if (!domain) throw new ImportError('domain XML: no <domain> element');
  // The UUID goes right after the name (libvirt does not mind, a reader does).
  const rebuilt: Tree = {};
  for (const [k, v] of Object.entries(domain)) {
    if (k === 'uuid') continue;
    rebuilt[k] = v;
    if (k === 'name') rebuilt.uuid = p.uuid;
  }
  const devices = (rebuilt.devices ?? {}) as Tree;
  const disks = asArray(devices.disk as Tree[] | Tree | undefined);
  for (const d of disks) {
    const source = d.source as Tree | undefined;
    const file = source?.['@_file'];
    if (!source || typeof file !== 'string') continue;
    const to = p.disks[file];
    if (!to) throw new ImportError(`domain XML: disk ${file} is not one of the converted disks`);
    source['@_file'] = to;
  }
  const serials = asArray(devices.serial as Tree[] | Tree | undefined);
  const first = serials[0];
  if (first) {
    first.log = { '@_file': p.consoleLog, '@_append': 'on' };
  } else {
    devices.serial = {
      '@_type': 'pty',
      target: { '@_port': '0' },
      log: { '@_file': p.consoleLog, '@_append': 'on' },
    };
  }
  return builder.build({ domain: rebuilt }) as string;
}
