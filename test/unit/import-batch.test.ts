/**
 * import and batch without services: the domain XML as the node gets it (golden), the manifest
 * checks (each error names the item and the field), the report as a table and as an HTML page
 * (golden), the default concurrency, and the usage errors of both commands (exit 2 before any
 * node is reached).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadManifest, ManifestError, resolveManifest } from '../../src/batch/manifest.js';
import {
  type BatchReport,
  buildReport,
  formatReportTable,
  renderReportHtml,
} from '../../src/batch/report.js';
import { defaultConcurrency } from '../../src/batch/runner.js';
import type { BatchStateData } from '../../src/batch/state.js';
import { describePlaced, placeDomainXml } from '../../src/import/domain-xml.js';
import { Importer } from '../../src/import/importer.js';
import { isLibvirtUnreachable } from '../../src/import/libvirt-retry.js';
import { LibvirtError } from '../../src/provisioning/libvirt/errors.js';
import { cli } from '../harness/cli.js';

const GOLDEN = path.resolve(import.meta.dirname, '../golden/import');

describe('the domain XML placed on the node', () => {
  it('names the pool paths, the UUID and a console log; the rest is kept', async () => {
    const xml = await fs.readFile(
      path.resolve(import.meta.dirname, '../golden/convert/domain/virtio-q35-bios.xml'),
      'utf8',
    );
    const before = describePlaced(xml);
    const map = Object.fromEntries(
      before.disks.map((d) => [d, `/pool/${path.basename(d)}`] as const),
    );
    const placed = placeDomainXml(xml, {
      disks: map,
      uuid: '11111111-2222-3333-4444-555555555555',
      consoleLog: '/pool/web-console.log',
    });
    await expect(placed).toMatchFileSnapshot(path.join(GOLDEN, 'placed-virtio-q35-bios.xml'));
    const after = describePlaced(placed);
    expect(after.name).toBe(before.name);
    expect(after.uuid).toBe('11111111-2222-3333-4444-555555555555');
    expect(after.disks).toEqual(before.disks.map((d) => `/pool/${path.basename(d)}`));
    expect(placed).toContain('<log file="/pool/web-console.log" append="on"/>');
  });

  it('escapes what needs escaping once, not twice', () => {
    const xml =
      '<domain type="qemu"><name>a&amp;b</name><devices><disk type="file" device="disk"><source file="/x/a&amp;b-sda.qcow2"/></disk></devices></domain>';
    const placed = placeDomainXml(xml, {
      disks: { '/x/a&b-sda.qcow2': '/p/a&b-sda.qcow2' },
      uuid: '11111111-2222-3333-4444-555555555555',
      consoleLog: '/p/a&b-console.log',
    });
    expect(placed).toContain('<name>a&amp;b</name>');
    expect(placed).toContain('file="/p/a&amp;b-sda.qcow2"');
    expect(placed).not.toContain('&amp;amp;');
  });

  it('refuses a disk the conversion did not make', () => {
    const xml =
      '<domain type="qemu"><name>a</name><devices><disk type="file" device="disk"><source file="/etc/passwd"/></disk></devices></domain>';
    expect(() => placeDomainXml(xml, { disks: {}, uuid: 'u', consoleLog: '/p/c.log' })).toThrow(
      'domain XML: disk /etc/passwd is not one of the converted disks',
    );
  });
});

describe('the batch manifest', () => {
  const base = '/srv/wave';
  it('resolves defaults, relative sources, nodes and networks', () => {
    const m = resolveManifest(
      {
        defaults: { pool: '/images', verifyBoot: true, network: 'isolated' },
        items: [
          { source: 'web/web.vmx' },
          {
            source: ['/abs/db.vmx'],
            name: 'db01',
            host: 'ssh://root@kvm2:2222',
            verifyBoot: false,
            network: ['VM Network:prod'],
          },
        ],
      },
      'wave.yaml',
      base,
    );
    expect(m.items.map((i) => i.key)).toEqual(['item1', 'db01']);
    const [a, b] = m.items;
    expect(a?.request.source).toEqual(['/srv/wave/web/web.vmx']);
    expect(a?.request.pool).toBe('/images');
    expect(a?.request.verifyBoot).toBe(true);
    expect(a?.request.networks).toEqual([{ from: undefined, to: 'isolated', kind: 'network' }]);
    expect(b?.request.target?.ssh).toEqual({ user: 'root', host: 'kvm2', port: 2222 });
    expect(b?.request.verifyBoot).toBe(false);
    expect(b?.request.networks).toEqual([{ from: 'VM Network', to: 'prod', kind: 'network' }]);
  });

  const bad: [string, unknown, string][] = [
    ['no items', { items: [] }, 'wave.yaml: items: the manifest lists no items'],
    [
      'a relative pool',
      { items: [{ source: 'a.vmx' }, { source: 'b.vmx', name: 'b', pool: 'images' }] },
      'wave.yaml: items[1] (b).pool: must be an absolute path',
    ],
    [
      'an unknown field',
      { items: [{ source: 'a.vmx', verify_boot: true }] },
      'wave.yaml: items[0]: Unrecognized key: "verify_boot"',
    ],
    [
      'a wrong type',
      { items: [{ source: 'a.vmx', name: 'web', start: 'yes' }] },
      'wave.yaml: items[0] (web).start: Invalid input: expected boolean, received string',
    ],
    [
      'a bad name',
      { items: [{ source: 'a.vmx', name: 'we b' }] },
      "wave.yaml: items[0] (we b).name: use letters, digits, '.', '_', '+' and '-' (at most 64)",
    ],
    [
      'a password in the host URL',
      { items: [{ source: 'a.vmx', name: 'w', host: 'ssh://root:secret@kvm1' }] },
      'wave.yaml: items[0] (w).host: host',
    ],
    [
      'two items into the same place',
      {
        items: [
          { source: 'a.vmx', name: 'w' },
          { source: 'b.vmx', name: 'w' },
        ],
      },
      'wave.yaml: items[1] (w).name: w is imported into the same pool on the same node as items[0] (w)',
    ],
    [
      'verifyBoot without start',
      { defaults: { start: false }, items: [{ source: 'a.vmx', name: 'w', verifyBoot: true }] },
      'wave.yaml: items[0] (w).verifyBoot: needs start (start: false given)',
    ],
    [
      'a bad default',
      { defaults: { verifyTimeout: -1 }, items: [{ source: 'a.vmx' }] },
      'wave.yaml: defaults.verifyTimeout: Too small: expected number to be >0',
    ],
  ];
  for (const [what, input, message] of bad) {
    it(`refuses ${what}, naming the item and the field`, () => {
      let err: unknown;
      try {
        resolveManifest(input, 'wave.yaml', base);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ManifestError);
      expect((err as Error).message).toContain(message);
      expect((err as Error).message).not.toContain('secret');
    });
  }

  it('reads YAML and JSON files; a YAML error names the file', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-manifest-'));
    try {
      await fs.writeFile(
        path.join(dir, 'w.yaml'),
        'items:\n  - source: a.vmx\n    name: a\n  - source: b.vmx\n',
      );
      await fs.writeFile(path.join(dir, 'w.json'), '{"items":[{"source":"a.vmx"}]}');
      await fs.writeFile(path.join(dir, 'bad.yaml'), 'items: [\n');
      expect((await loadManifest(path.join(dir, 'w.yaml'))).items.map((i) => i.key)).toEqual([
        'a',
        'item2',
      ]);
      expect((await loadManifest(path.join(dir, 'w.json'))).items[0]?.request.source).toEqual([
        path.join(dir, 'a.vmx'),
      ]);
      await expect(loadManifest(path.join(dir, 'bad.yaml'))).rejects.toThrow(
        `${path.join(dir, 'bad.yaml')}: not valid YAML`,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

function sampleReport(): BatchReport {
  const manifest = resolveManifest(
    {
      items: [
        { source: 'a.vmx', name: 'web01' },
        { source: 'b.vmx', name: 'db01', host: 'ssh://root@kvm2:22' },
        { source: 'broken.vmx', name: 'broken' },
      ],
    },
    '/srv/wave.yaml',
    '/srv',
  );
  const t = Date.parse('2026-01-02T03:00:00.000Z');
  const spans = (offset: number, stages: [string, number][], failLast = false) => {
    let at = t + offset;
    return stages.map(([stage, ms], i) => {
      const s = { stage, start: at, end: at + ms, ok: !(failLast && i === stages.length - 1) };
      at += ms;
      return s;
    }) as BatchStateData['items'][string]['stages'];
  };
  const state: BatchStateData = {
    version: 1,
    manifest: '/srv/wave.yaml',
    owner: { host: 'h', pid: 1, since: '' },
    runs: 2,
    items: {
      web01: {
        key: 'web01',
        status: 'done',
        attempts: 1,
        run: 1,
        started: t,
        ended: t + 40_000,
        stages: spans(0, [
          ['prepare', 500],
          ['convert', 30_000],
          ['place', 100],
          ['define', 200],
          ['start', 700],
          ['verify-boot', 8_500],
        ]),
        result: {
          name: 'web01',
          node: 'local',
          uri: 'qemu:///system',
          state: 'running',
          xmlPath: '/images/web01.xml',
          disks: [{ path: '/images/web01-sda.qcow2', bytes: 50 * 1024 * 1024 }],
          booted: true,
          bootSeconds: 8.5,
        },
        log: '/srv/wave.state.logs/web01.log',
      },
      db01: {
        key: 'db01',
        status: 'done',
        attempts: 2,
        run: 2,
        started: t + 1000,
        ended: t + 50_000,
        stages: spans(1000, [
          ['prepare', 800],
          ['convert', 35_000],
          ['place', 4_000],
          ['define', 300],
          ['start', 900],
        ]),
        resumedAfterCrash: true,
        result: {
          name: 'db01',
          node: 'ssh://root@kvm2:22',
          uri: 'qemu:///system',
          state: 'running',
          xmlPath: '/images/db01.xml',
          disks: [{ path: '/images/db01-sda.qcow2', bytes: 80 * 1024 * 1024 }],
        },
        log: '/srv/wave.state.logs/db01.log',
      },
      broken: {
        key: 'broken',
        status: 'failed',
        attempts: 1,
        run: 2,
        started: t + 41_000,
        ended: t + 42_000,
        stages: spans(41_000, [['prepare', 1_000]], true),
        error: {
          message: '/srv/broken.vmx: line 3: no closing quote',
          code: 'METADATA_INVALID',
          stage: 'prepare',
        },
        log: '/srv/wave.state.logs/broken.log',
      },
    },
  };
  return buildReport(manifest, state, {
    started: t,
    ended: t + 50_000,
    concurrency: 2,
    run: 2,
    skipped: new Set(['web01']),
    stateFile: '/srv/wave.state.json',
  });
}

describe('the batch report', () => {
  it('counts, stage times, sizes and reasons per item', () => {
    const r = sampleReport();
    expect(r.counts).toEqual({ done: 2, failed: 1, pending: 0, skipped: 1 });
    const broken = r.items.find((i) => i.key === 'broken');
    expect(broken?.failedStage).toBe('prepare');
    expect(broken?.error).toBe('/srv/broken.vmx: line 3: no closing quote');
    expect(r.items.find((i) => i.key === 'db01')?.stageMs.place).toBe(4000);
    expect(r.items.find((i) => i.key === 'web01')?.bytes).toBe(50 * 1024 * 1024);
  });

  it('as a terminal table (golden)', async () => {
    await expect(formatReportTable(sampleReport())).toMatchFileSnapshot(
      path.join(GOLDEN, 'report-table.txt'),
    );
  });

  it('as a self-contained HTML page (golden): no script, no external resource', async () => {
    const html = renderReportHtml(sampleReport());
    await expect(html).toMatchFileSnapshot(path.join(GOLDEN, 'report.html'));
    expect(html).not.toMatch(/<script|<link|src=|url\(|https?:\/\/(?!v2v)/i);
  });
});

describe('batch and import options', () => {
  it('the default concurrency follows cores and free memory', () => {
    expect(defaultConcurrency(2, 16 * 1024 ** 3)).toBe(2);
    expect(defaultConcurrency(8, 4 * 1024 ** 3)).toBe(2);
    expect(defaultConcurrency(8, 1024 ** 3)).toBe(1);
  });

  it('libvirtd unreachable is told apart from a refusal', () => {
    const down = new LibvirtError(
      'other',
      'start domain "a"',
      "failed to connect to the hypervisor: Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused",
      'qemu:///system on local',
    );
    const refused = new LibvirtError('not-found', 'start domain "a"', 'Domain not found', 'x');
    expect(isLibvirtUnreachable(down)).toBe(true);
    expect(isLibvirtUnreachable(new Error('wrapped', { cause: down }))).toBe(true);
    expect(isLibvirtUnreachable(refused)).toBe(false);
  });

  it('import usage errors exit 2 before any node is reached', async () => {
    for (const [args, message] of [
      [['--pool', 'images'], '--pool images: must be an absolute path on the node'],
      [['--no-start', '--verify-boot'], 'cannot be combined with --no-start'],
      [
        ['--storage', 'snapshot', '--host', 'ssh://root@127.0.0.1:1'],
        '--storage snapshot keeps the disk as an overlay over the source',
      ],
      [['--name', 'a b'], '--name "a b": use letters'],
    ] as const) {
      const r = await cli('import', '/nonexistent/web.vmx', ...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
    }
    expect(() => Importer.checkRequest({ source: [] })).toThrow('give a SOURCE to import');
  });

  it('batch: a broken manifest exits 2 naming the item and field; --concurrency is checked', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-manifest-'));
    try {
      const f = path.join(dir, 'w.json');
      await fs.writeFile(f, JSON.stringify({ items: [{ source: 'a.vmx', pool: 'rel' }] }));
      const r = await cli('batch', f);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('items[0].pool: must be an absolute path');
      const c = await cli('batch', f, '--concurrency', '0');
      expect(c.status).toBe(2);
      expect(c.stderr).toContain('--concurrency 0: give a whole number from 1 to 64');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
