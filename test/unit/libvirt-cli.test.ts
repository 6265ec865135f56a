/** `v2v-load domain`: the command line (no libvirt needed: help and usage errors). */
import { describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';

describe('v2v-load domain', () => {
  it('--help lists every verb and the node options', async () => {
    const r = await cli('domain', '--help');
    expect(r.status).toBe(0);
    for (const verb of [
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
    ]) {
      expect(r.stdout).toContain(verb);
    }
    for (const opt of ['--connect', '--host', '--identity', '--known-hosts', '--json']) {
      expect(r.stdout).toContain(opt);
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
