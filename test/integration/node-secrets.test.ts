/**
 * The real binary (bin/v2v-load.js) never prints a credential typed into a URL, whatever goes
 * wrong, with or without --json and -v; and -v logs every command a node runs.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cli } from '../harness/cli.js';

const exec = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/v2v-load.js');
const sshd = inject('sshd');
const SECRET = 'hunter2-s3cr3t';

async function v2vLoad(...args: string[]) {
  try {
    const r = await exec(process.execPath, [BIN, ...args], { timeout: 300_000 });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { status: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-secrets-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('the binary never prints a password typed into a URL', () => {
  const port = sshd.port;
  it.each([
    ['the test sshd', `ssh://root:${SECRET}@127.0.0.1:${port}`, /a password in the URL/],
    ['an unreachable host', `ssh://root:${SECRET}@127.0.0.1:1`, /a password in the URL/],
    ['a bad host', `ssh://root:${SECRET}@no-such-host.invalid`, /a password in the URL/],
    ['a URL that does not parse', `ssh://root:${SECRET}@127.0.0.1:99999`, /: not a URL/],
  ])('--host with a password, %s: exit 2, no password anywhere', async (_what, url, why) => {
    for (const extra of [[], ['--json'], ['--json', '-v']]) {
      const r = await v2vLoad('doctor', '--no-libguestfs', '--host', url, ...extra);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).toContain("--host 'ssh://root:***@");
      expect(r.stdout + r.stderr).not.toContain(SECRET);
    }
  });

  it('-c with a password: neither the -v command lines nor the report repeat it', async () => {
    const uri = `qemu+ssh://root:${SECRET}@127.0.0.1:1/system`;
    const r = await v2vLoad('doctor', '--no-libguestfs', '--json', '-v', '--dir', dir, '-c', uri);
    expect(r.stderr).toMatch(
      /debug: run on local: virsh .*qemu\+ssh:\/\/root:\*\*\*@127\.0\.0\.1:1\/system.*: exit \d+ \(\d+ ms\)/,
    );
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});

describe('-v logs every command run on a node', () => {
  it('locally: node, argv, exit status and duration', async () => {
    const r = await cli('doctor', '-v', '--no-libguestfs', '--dir', dir);
    expect(r.stderr).toMatch(
      /^v2v-load: debug: run on local: qemu-img --version: exit 0 \(\d+ ms\)$/m,
    );
  });

  it('over SSH, naming the node', async () => {
    const r = await cli(
      'doctor',
      '-v',
      '--no-libguestfs',
      '--dir',
      dir,
      '--host',
      sshd.url,
      '--identity',
      sshd.identity,
      '--known-hosts',
      sshd.knownHosts,
    );
    const name = sshd.url.replace(/[.]/g, '\\.');
    expect(r.stderr).toMatch(
      new RegExp(
        `^v2v-load: debug: run on ${name}: qemu-img --version: exit 0 \\(\\d+ ms\\)$`,
        'm',
      ),
    );
    expect(r.stderr).toMatch(new RegExp(`^v2v-load: debug: ${name}: logged in as root with `, 'm'));
  });

  it('without -v, no such line', async () => {
    const r = await cli('doctor', '--no-libguestfs', '--dir', dir);
    expect(r.stderr).not.toMatch(/run on local/);
  });
});
