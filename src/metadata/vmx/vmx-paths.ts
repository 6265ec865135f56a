/**
 * Path helpers for the .vmx reader: Windows paths are recognised (and refused by callers), and
 * file names from a .vmx or VMDK descriptor are resolved as POSIX paths on the node.
 */
import * as path from 'node:path';

export function isWindowsPath(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

/** A file name from a .vmx or descriptor, made absolute against `dir` (absolute kept as is). */
export function resolveFrom(dir: string, name: string): string {
  return path.posix.isAbsolute(name) ? path.posix.normalize(name) : path.posix.resolve(dir, name);
}
