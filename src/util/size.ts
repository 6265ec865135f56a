import { UsageError } from '../errors.js';

/** `1G`, `500M`, `1073741824` -> bytes. */
export function parseSize(value: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(value.trim());
  if (!m) {
    throw new UsageError(`${option} '${value}': not a size`, {
      hint: 'e.g. 512M, 10G, 1073741824',
    });
  }
  const power = ' KMGT'.indexOf((m[2] ?? '').toUpperCase() || ' ');
  return Math.round(Number(m[1]) * 1024 ** power);
}
