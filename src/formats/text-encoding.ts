/**
 * Text decoding by WHATWG label, with Windows-1252 done right (Node's TextDecoder decodes that
 * label as ISO-8859-1). Used by the .vmx parser and the VMDK descriptor reader.
 */
import { TextDecoder } from 'node:util';

/** Windows-1252 0x80-0x9F (Node's TextDecoder decodes that label as ISO-8859-1). */
const CP1252_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

/**
 * Decodes bytes in the encoding a WHATWG `label` names (`UTF-8`, `windows-1252`, `Shift_JIS`).
 * @throws RangeError for an unknown label; TypeError for invalid bytes when `fatal`
 */
export function decodeText(
  bytes: Uint8Array,
  label: string,
  fatal = false,
): { text: string; encoding: string } {
  const decoder = new TextDecoder(label, { fatal });
  if (decoder.encoding !== 'windows-1252') {
    return { text: decoder.decode(bytes), encoding: decoder.encoding };
  }
  const chars = Array.from(bytes, (b) =>
    b >= 0x80 && b < 0xa0 ? (CP1252_HIGH[b - 0x80] ?? '') : String.fromCharCode(b),
  );
  return { text: chars.join(''), encoding: 'windows-1252' };
}
