/**
 * vitest global set-up of the integration tests: makes this machine ready as
 * ../shared/ENVIRONMENT.md describes, and undoes only what it did.
 * - checks the programs the tests drive are installed;
 * - builds dist/ (the CLI tests run bin/v2v-load.js);
 * - starts virtlogd + libvirtd unless they answer already, and warms libvirt's capability cache;
 * - starts a private sshd on 127.0.0.1 with keys of its own, provided to tests as `sshd`.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { type SshdInfo, startSshd, stopSshd } from './sshd.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    sshd: SshdInfo;
  }
}

const REQUIRED_PROGRAMS = [
  'qemu-img',
  'qemu-system-x86_64',
  'virsh',
  'virt-admin',
  'libvirtd',
  'virtlogd',
  'guestfish',
  'ssh-keygen',
  'ssh',
  'redis-server',
  'redis-cli',
];

async function onPath(program: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/sbin', '/sbin')) {
    try {
      await fs.access(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const missing: string[] = [];
  for (const p of [...REQUIRED_PROGRAMS, 'sshd']) {
    if (p === 'sshd' ? !(await onPath('sshd')) : !(await onPath(p))) missing.push(p);
  }
  if (missing.length) {
    throw new Error(
      `integration tests need ${missing.join(', ')}: run scripts/install-deps.sh as root first`,
    );
  }

  // Type errors are the type check's business (scripts/test.sh runs it before the tests);
  // tsc still emits, so the CLI tests run the code as written.
  await exec('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT }).catch((e: unknown) => {
    const out = (e as { stdout?: string }).stdout ?? String(e);
    process.stderr.write(`global-setup: tsc reported errors (dist/ emitted anyway):\n${out}\n`);
  });

  const { stdout } = await exec('bash', [path.join(ROOT, 'scripts/services.sh'), 'start'], {
    timeout: 180_000,
  });
  const started = /started:(.*)/.exec(stdout)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];

  const sshd = await startSshd();
  project.provide('sshd', sshd);

  return async () => {
    await stopSshd(sshd);
    if (started.length) {
      await exec('bash', [path.join(ROOT, 'scripts/services.sh'), 'stop', ...started]);
    }
  };
}
