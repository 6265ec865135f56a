/** `v2v-load domain`: the command line (no libvirt needed: help and usage errors). */
import { describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';

describe('v2v-load domain', () => {
  it('--help lists exactly the verbs, and the node options', async () => {
    const r = await cli('domain', '--help');
    expect(r.status).toBe(0);
    const verbs = [
      'list',
      'define',
      'undefine',
      'start',
      'destroy',
      'shutdown',
      'reboot',
      'reset',
      'suspend',
      'resume',
      'state',
      'info',
      'xml',
      'snapshot-create',
      'snapshot-list',
      'snapshot-revert',
      'snapshot-delete',
      'stats',
    ];
    // yargs hard-wraps help at its width, inside words too: a line break and the padding after
    // it are not part of the text.
    const unwrapped = r.stdout.replace(/\n */g, '');
    // The verb positional's choices: `[choices: "list", "define", ...]`.
    const choices = /\[choices: ([^\]]*)\]/.exec(unwrapped)?.[1] ?? '';
    expect([...choices.matchAll(/"([^"]+)"/g)].map((m) => m[1]).sort()).toEqual([...verbs].sort());
    // The epilog: `verbs: list, define FILE, undefine (remove ...), ...`, one entry per verb.
    let epilog = /verbs: (.*)$/.exec(unwrapped)?.[1] ?? '';
    while (/\([^()]*\)/.test(epilog)) epilog = epilog.replace(/\([^()]*\)/g, '');
    const listed = epilog.split(',').map((e) => e.trim().split(/\s+/)[0]);
    expect(listed.sort()).toEqual([...verbs].sort());
    // Option flags at the start of a help line, not words anywhere in the text.
    const flags = [...r.stdout.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]);
    for (const opt of ['--connect', '--host', '--identity', '--known-hosts', '--json']) {
      expect(flags).toContain(opt);
    }
  });

  it('an unknown verb is a usage error (exit 2) naming it', async () => {
    const r = await cli('domain', 'frobnicate', 'web01');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/frobnicate/);
  });

  it('a bad --host is a usage error before anything runs', async () => {
    const r = await cli('domain', 'list', '--host', 'http://vmhost1');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/only ssh:\/\/ URLs/);
  });
});
