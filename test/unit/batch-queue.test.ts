/**
 * The queue mode without services: the `--queue` URL (database, TLS, the password from the URL
 * or the environment, never in a message), the stages of an item, the names on the queue, the
 * retryable failures, and the usage errors of `batch --queue` and `worker` (exit 2 before
 * Redis is reached).
 */
import { describe, expect, it } from 'vitest';
import { parseQueueUrl, REDIS_PASSWORD_ENV } from '../../src/batch/queue/connection.js';
import {
  hostQueue,
  itemJobId,
  stageJobId,
  stageQueue,
  stagesOf,
} from '../../src/batch/queue/model.js';
import { retryable } from '../../src/batch/queue/worker.js';
import { NodeUnreachableError, UsageError } from '../../src/errors.js';
import { ImportBusyError, ImportError } from '../../src/import/errors.js';
import { LibvirtError } from '../../src/provisioning/libvirt/errors.js';
import { cli } from '../harness/cli.js';

describe('the --queue URL', () => {
  it('reads host, port, database; the password from the URL or the environment', () => {
    expect(parseQueueUrl('redis://10.0.0.5:6380/3', {})).toEqual({
      host: '10.0.0.5',
      port: 6380,
      db: 3,
      username: undefined,
      password: undefined,
      tls: false,
      display: 'redis://10.0.0.5:6380/3',
    });
    const t = parseQueueUrl('rediss://ops:pa%40ss@queue.example:6379', {});
    expect(t).toMatchObject({ username: 'ops', password: 'pa@ss', tls: true, db: 0 });
    expect(t.display).toBe('rediss://ops@queue.example:6379/0');
    expect(parseQueueUrl('redis://h', { [REDIS_PASSWORD_ENV]: 'envpw' })).toMatchObject({
      port: 6379,
      password: 'envpw',
      display: 'redis://h/0',
    });
    // The URL's password wins over the environment's.
    expect(parseQueueUrl('redis://:urlpw@h:1/0', { [REDIS_PASSWORD_ENV]: 'envpw' }).password).toBe(
      'urlpw',
    );
  });

  it.each([
    ['http://h:1/0', 'not a redis:// URL'],
    ['h:6379', 'not a redis:// URL'],
    ['redis://h:1/zero', 'the database is a number'],
    ['redis://h:1/0?x=1', 'takes no query'],
    ['not a url', 'not a URL'],
  ])('refuses %s', (url, text) => {
    expect(() => parseQueueUrl(url, {})).toThrow(UsageError);
    expect(() => parseQueueUrl(url, {})).toThrow(text);
  });

  it('never repeats a password in an error', () => {
    try {
      parseQueueUrl('http://:hunter2@h:1/0', {});
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
      expect((e as Error).message).toContain('***');
    }
  });
});

describe('an item on the queue', () => {
  it('goes through convert, place, start and (when asked) verify-boot', () => {
    expect(stagesOf({ source: ['/a.vmx'] })).toEqual(['convert', 'place', 'start']);
    expect(stagesOf({ source: ['/a.vmx'], verifyBoot: true })).toEqual([
      'convert',
      'place',
      'start',
      'verify-boot',
    ]);
  });

  it('has names without a colon (BullMQ refuses them)', () => {
    expect(itemJobId('wave1', 'web01')).toBe('wave1/web01');
    expect(stageJobId('wave1', 'web01', 'convert')).toBe('wave1/web01/convert');
    expect(stageQueue()).toBe('stages');
    expect(stageQueue('ds-gold')).toBe('stages-ds-gold');
    expect(hostQueue('conv:1.example')).toBe('host-conv_1.example');
  });

  it('is tried again only for failures that may pass', () => {
    const unreachable = new LibvirtError(
      'other',
      'define',
      'Failed to connect socket to x',
      'qemu:///system on local',
    );
    expect(retryable(unreachable)).toBe(true);
    expect(retryable(new NodeUnreachableError('ssh://h', 'refused', { retryable: true }))).toBe(
      true,
    );
    expect(retryable(new ImportBusyError('another import of x is running'))).toBe(true);
    expect(retryable(new NodeUnreachableError('ssh://h', 'host key changed'))).toBe(false);
    expect(retryable(new ImportError('disk missing'))).toBe(false);
    expect(retryable(new Error('boom'))).toBe(false);
  });
});

describe('usage errors of the queue mode (exit 2, Redis not reached)', () => {
  it.each([
    [
      ['batch', '/m.yaml', '--queue', 'redis://h/0', '--state', '/s.json'],
      '--state is for the embedded batch',
    ],
    [
      ['batch', '/m.yaml', '--queue', 'redis://h/0', '-j', '2'],
      '--concurrency is for the embedded batch',
    ],
    [['batch', '/m.yaml', '--follow'], '--follow needs --queue'],
    [['batch', '/m.yaml', '--name', 'x'], '--name needs --queue'],
    [
      ['batch', '/m.yaml', '--queue', 'redis://h/0', '--report', '/r.json'],
      '--report with --queue needs --follow',
    ],
    [['batch'], 'give a MANIFEST'],
    [['worker', '--queue', 'redis://h/0', '--concurrency', '0'], '--concurrency 0'],
    [['worker', '--queue', 'redis://h/0', '--label', 'a b'], '--label "a b"'],
    [['worker', '--queue', 'ftp://h/0'], 'not a redis:// URL'],
    [['worker'], 'Missing required argument: queue'],
  ])('%j', async (args, text) => {
    const r = await cli(...args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(text);
  });
});
