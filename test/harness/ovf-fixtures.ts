/**
 * Stand-in files for the OVF/OVA corpus. The corpus .mf manifests hold digests of these exact
 * bytes: change `fakeFile` and every manifest must be regenerated.
 */

/** Deterministic stand-in bytes for a disk or ISO file (the corpus manifests hash these). */
export function fakeFile(name: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 0;
  for (const c of name) x = (Math.imul(x, 31) + c.charCodeAt(0)) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** The References of an OVF text: href and declared size (4096 when none). */
export function references(ovf: string): { href: string; size: number }[] {
  return [...ovf.matchAll(/<(?:ovf:)?File\b[^>]*>/g)].map((m) => ({
    href: /ovf:href="([^"]+)"/.exec(m[0])?.[1] ?? '',
    size: Number(/ovf:size="(\d+)"/.exec(m[0])?.[1] ?? 4096),
  }));
}
