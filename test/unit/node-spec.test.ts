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

  function refusal(url: string): UsageError {
    try {
      parseSshUrl(url);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return e as UsageError;
    }
    throw new Error(`${url} was accepted`);
  }

  it.each([
    ['vmhost1', /: not a URL$/],
    ['http://vmhost1', /: only ssh:\/\/ URLs are supported$/],
    ['ssh://root@vmhost1/images', /: unexpected path '\/images'$/],
    ['ssh://root@vmhost1:99999', /: not a URL$/],
  ])('refuses %s with a usage error naming the option', (url, why) => {
    const err = refusal(url);
    expect(err.message).toMatch(why);
    expect(err.message.startsWith(`--host '${url}': `)).toBe(true);
  });

  // A password is refused, and no message, hint or JSON repeats it: the input is quoted with
  // the password replaced by ***, whatever else is wrong with it.
  it.each([
    ['ssh://root:s3cr3t@vmhost1', "--host 'ssh://root:***@vmhost1'", /a password in the URL/],
    ['ssh://root:s3cr3t@vmhost1:2222/', "--host 'ssh://root:***@vmhost1:2222/'", /a password/],
    ['ssh://root:p@s3cr3t:x@vmhost1', "--host 'ssh://root:***@vmhost1'", /a password/],
    ['ssh://root:s%40s3cr3t@vmhost1', "--host 'ssh://root:***@vmhost1'", /a password/],
    ['http://root:s3cr3t@vmhost1', "--host 'http://root:***@vmhost1'", /only ssh:\/\//],
    ['ssh://root:s3cr3t@vmhost1/images', "--host 'ssh://root:***@vmhost1/images'", /a password/],
    ['ssh://root:s3cr3t@vmhost1:99999', "--host 'ssh://root:***@vmhost1:99999'", /not a URL/],
    ['ssh://root:s3cr3t@vm host', "--host 'ssh://root:***@vm host'", /not a URL/],
    ['root:s3cr3t@vmhost1', "--host 'root:***@vmhost1'", /only ssh:\/\//],
  ])('refuses %s without repeating the password', (url, shown, why) => {
    const err = refusal(url);
    expect(err.message.startsWith(`${shown}: `)).toBe(true);
    expect(err.message).toMatch(why);
    const everything = JSON.stringify([err.message, err.hint, err.toJSON(), err.stack, err.cause]);
    expect(everything).not.toContain('s3cr3t');
  });

  it('says why a password is refused and what to use instead', () => {
    const err = refusal('ssh://root:s3cr3t@vmhost1');
    expect(err.exitStatus).toBe(2);
    expect(err.hint).toMatch(/visible to every user/);
    expect(err.hint).toMatch(/ssh-add KEY, or --identity FILE/);
  });

  it('formats a target back as a URL (IPv6 bracketed)', () => {
    expect(formatSshTarget({ user: 'root', host: '::1', port: 22 })).toBe('ssh://root@[::1]:22');
    expect(formatSshTarget({ user: 'root', host: 'h', port: 2222 })).toBe('ssh://root@h:2222');
  });
});
