/**
 * Credentials never reach a message, a log line, `--json` output or an error's cause: the
 * redaction itself, the error classes, the logger, a local node's `-v` lines, and the real CLI
 * (in process) for the inputs a user types.
 */
import { describe, expect, it } from 'vitest';
import { CommandError, NodeFileError, V2vError } from '../../src/errors.js';
import { StreamLogger } from '../../src/log/logger.js';
import { redactSecrets, redactUrlInput } from '../../src/log/redact.js';
import { LocalNode } from '../../src/node/local-node.js';
import { cli } from '../harness/cli.js';

const SECRET = 'hunter2-s3cr3t';

/** Every text an error could show: message, hint, JSON, stack, and its whole cause chain. */
function allText(e: unknown): string {
  const parts: unknown[] = [];
  let c: unknown = e;
  for (let i = 0; c && i < 16; i++) {
    const err = c as Error & { toJSON?: () => unknown };
    parts.push(err.message, err.stack, err.toJSON?.(), { ...err });
    c = err.cause;
  }
  return JSON.stringify(parts);
}

function memoryLogger(): { log: StreamLogger; lines: string[] } {
  const lines: string[] = [];
  return { log: new StreamLogger('debug', (l) => lines.push(l)), lines };
}

describe('redactSecrets', () => {
  it.each([
    [`ssh://root:${SECRET}@vmhost`, 'ssh://root:***@vmhost'],
    [
      `virsh -c qemu+ssh://root:${SECRET}@vmhost/system list`,
      'virsh -c qemu+ssh://root:***@vmhost/system list',
    ],
    [`"esx://admin:${SECRET}@esx1/?no_verify=1"`, '"esx://admin:***@esx1/?no_verify=1"'],
    [
      `ssh://root:p@${SECRET}@vmhost:22 and ssh://a:${SECRET}@b`,
      'ssh://root:***@vmhost:22 and ssh://a:***@b',
    ],
    ['ssh://root@vmhost:2222/path', 'ssh://root@vmhost:2222/path'],
    ['no URL here: user:pass@host', 'no URL here: user:pass@host'],
  ])('%s', (text, want) => {
    expect(redactSecrets(text)).toBe(want);
  });

  it('hides the password of an input that does not even parse', () => {
    expect(redactUrlInput(`ssh://root:${SECRET}@vm host`)).toBe('ssh://root:***@vm host');
    expect(redactUrlInput(`root:${SECRET}@vmhost`)).toBe('root:***@vmhost');
    expect(redactUrlInput('ssh://root@vmhost')).toBe('ssh://root@vmhost');
  });
});

describe('errors carry no credentials', () => {
  it('V2vError: message, hint, JSON and every error in the cause chain', () => {
    const inner = Object.assign(new Error(`spawn virsh -c qemu+ssh://root:${SECRET}@h/system`), {
      spawnargs: ['-c', `qemu+ssh://root:${SECRET}@h/system`],
    });
    const middle = new Error(`wrapped: ssh://u:${SECRET}@h`, { cause: inner });
    const err = new NodeFileError(
      'local',
      'read',
      '/images/disk.img',
      `EIO at ssh://u:${SECRET}@h`,
      {
        cause: middle,
      },
    );
    expect(err.message).toBe('read /images/disk.img failed: EIO at ssh://u:***@h');
    expect(allText(err)).not.toContain(SECRET);
    expect(new V2vError('x', { hint: `try ssh://root:${SECRET}@h` }).hint).toBe(
      'try ssh://root:***@h',
    );
  });

  it('CommandError: message and JSON (argv, stderr)', () => {
    const url = `qemu+ssh://root:${SECRET}@vmhost/system`;
    const err = new CommandError({
      argv: ['virsh', '-c', url, 'list'],
      node: 'local',
      exitCode: 1,
      signal: undefined,
      stdout: '',
      stderr: `error: failed to connect to ${url}\n`,
      durationMs: 5,
      timedOut: false,
      aborted: false,
    });
    expect(err.message).toBe(
      '`virsh -c qemu+ssh://root:***@vmhost/system list` exited with code 1: ' +
        'error: failed to connect to qemu+ssh://root:***@vmhost/system',
    );
    expect(JSON.stringify(err.toJSON())).not.toContain(SECRET);
    expect((err.toJSON() as { argv: string[] }).argv[2]).toBe('qemu+ssh://root:***@vmhost/system');
  });

  it('the logger redacts whatever it is given', () => {
    const { log, lines } = memoryLogger();
    log.info(`connecting to ssh://root:${SECRET}@vmhost`);
    log.debug(new Error(`at ssh://root:${SECRET}@vmhost`).stack ?? '');
    expect(lines[0]).toBe('v2v-load: connecting to ssh://root:***@vmhost\n');
    expect(lines.join('')).not.toContain(SECRET);
  });
});

describe('local node: -v logs every command run', () => {
  it('node, argv (quoted, redacted), exit status and duration, for success and failure', async () => {
    const { log, lines } = memoryLogger();
    const node = new LocalNode({ logger: log });
    await node.run(['echo', 'two words']);
    const url = `qemu+ssh://root:${SECRET}@vmhost/system`;
    const err = await node
      .run(['sh', '-c', 'echo "$0" >&2; exit 3', url])
      .catch((e: unknown) => e as CommandError);
    await node.run(['/nonexistent/v2v-load-no-such-program']).catch(() => {});
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^v2v-load: debug: run on local: echo "two words": exit 0 \(\d+ ms\)\n$/,
    );
    expect(lines[1]).toMatch(
      /^v2v-load: debug: run on local: sh -c "echo \\"\$0\\" >&2; exit 3" qemu\+ssh:\/\/root:\*\*\*@vmhost\/system: exit 3 \(\d+ ms\)\n$/,
    );
    expect(lines[2]).toMatch(
      /^v2v-load: debug: run on local: \/nonexistent\/v2v-load-no-such-program: command not found \(\d+ ms\)\n$/,
    );
    expect(err).toBeInstanceOf(CommandError);
    expect(allText(err)).not.toContain(SECRET);
    expect(lines.join('')).not.toContain(SECRET);
  });

  it('a node without a logger logs nothing and still runs', async () => {
    expect((await new LocalNode().run(['echo', 'ok'])).stdout).toBe('ok\n');
  });

  it('does not hand the key passphrase to the programs it runs', async () => {
    process.env.V2V_LOAD_SSH_PASSPHRASE = SECRET;
    try {
      const r = await new LocalNode().run(['env']);
      expect(r.stdout).toContain('PATH=');
      expect(r.stdout).not.toContain(SECRET);
    } finally {
      delete process.env.V2V_LOAD_SSH_PASSPHRASE;
    }
  });
});

describe('the CLI never prints a password from --host', () => {
  const url = `ssh://root:${SECRET}@127.0.0.1:1`;
  it.each([
    ['a password in --host', ['doctor', '--host', url]],
    ['an unreachable host', ['doctor', '--host', `ssh://root:${SECRET}@127.0.0.1:1`, '-v']],
    ['a bad host name', ['doctor', '--host', `ssh://root:${SECRET}@bad host.invalid`]],
    ['a bad port', ['doctor', '--host', `ssh://root:${SECRET}@vmhost:99999`]],
    ['a URL given as a stray argument', ['doctor', url]],
    ['another usage error beside it', ['doctor', '--host', url, '--min-free', 'lots']],
  ])('%s: exit 2, with and without --json and -v', async (_what, args) => {
    for (const extra of [[], ['--json'], ['-v', '--json']]) {
      const r = await cli(...args, ...extra);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^v2v-load: error: /);
      expect(r.stdout + r.stderr).not.toContain(SECRET);
      if (extra.includes('--json')) {
        const json = JSON.parse(r.stdout) as { code: string; message: string };
        expect(json.code).toBe('USAGE');
        expect(json.message).not.toContain(SECRET);
      }
    }
  });

  it('names the node without the password', async () => {
    const r = await cli('doctor', '--host', url, '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({
      code: 'USAGE',
      message: "--host 'ssh://root:***@127.0.0.1:1': a password in the URL is not accepted",
    });
  });
});
