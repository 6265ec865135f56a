import * as os from 'node:os';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { formatSshTarget, parseSshUrl } from '../../src/node/node-spec.js';

describe('parseSshUrl (--host)', () => {
  it.each([
    ['ssh://root@vmhost1:2222', { user: 'root', host: 'vmhost1', port: 2222 }],
    ['ssh://admin@10.0.0.5', { user: 'admin', host: '10.0.0.5', port: 22 }],
    ['ssh://root@[::1]:2200', { user: 'root', host: '::1', port: 2200 }],
    ['ssh://vmhost1/', { user: os.userInfo().username, host: 'vmhost1', port: 22 }],
  ])('parses %s', (url, target) => {
    expect(parseSshUrl(url)).toEqual(target);
  });

  it.each([
    ['vmhost1', /not a URL/],
    ['http://vmhost1', /only ssh:\/\/ URLs/],
    ['ssh://root:secret@vmhost1', /passwords in URLs/],
    ['ssh://root@vmhost1/images', /unexpected path/],
    ['ssh://root@vmhost1:99999', /not a URL/],
  ])('refuses %s with a usage error naming the option', (url, why) => {
    const err = (() => {
      try {
        parseSshUrl(url);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toContain(`--host '${url}'`);
  });

  it('formats a target back as a URL (IPv6 bracketed)', () => {
    expect(formatSshTarget({ user: 'root', host: '::1', port: 22 })).toBe('ssh://root@[::1]:22');
    expect(formatSshTarget({ user: 'root', host: 'h', port: 2222 })).toBe('ssh://root@h:2222');
  });
});
