/** `v2v-load convert` helpers: --with parsing and the human summary of a result (golden). */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatConvertResult, parseWith } from '../../src/cli/commands/convert.js';
import type { ConvertResult } from '../../src/convert/pipeline.js';
import { UsageError } from '../../src/errors.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/convert/cli');

describe('parseWith', () => {
  it('reads NAME=PATH values; the first = splits', () => {
    expect(parseWith([])).toEqual({});
    expect(parseWith(['kernel=/srv/pkgs/linux.deb', 'x=/a=b'])).toEqual({
      kernel: '/srv/pkgs/linux.deb',
      x: '/a=b',
    });
  });

  it.each(['kernel', '=/srv/k.deb', 'kernel=', ''])(
    'refuses %j with a usage error and a hint',
    (v) => {
      let err: unknown;
      try {
        parseWith(['kernel=/ok.deb', v]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).message).toBe(`--with ${v}: expected NAME=PATH`);
      expect((err as UsageError).hint).toContain('--with kernel=');
      expect((err as UsageError).exitStatus).toBe(2);
    },
  );
});

function result(over: Partial<ConvertResult> = {}): ConvertResult {
  return {
    name: 'web',
    dryRun: false,
    source: { kind: 'vmx', path: '/srv/vm/web/web.vmx', hypervisor: 'vmware' },
    guest: {
      distro: 'debian',
      version: '12.8',
      productName: 'Debian GNU/Linux 12 (bookworm)',
      kernels: ['6.1.0-27-amd64', '6.1.0-28-amd64'],
      initramfsTool: 'initramfs-tools',
      bootloader: 'grub2',
    },
    modules: { hvsource: 'vmware-linux', guestos: 'debian', hvtarget: 'kvm' },
    plan: [
      '[guestos/debian] remove packages open-vm-tools (dpkg): remove the source hypervisor tools',
      '[guestos/debian] edit /etc/fstab: device names for the target bus (sda→vda)\n--- /etc/fstab\n+++ /etc/fstab\n@@ -1,1 +1,1 @@\n-/dev/sda1 / ext4 defaults 0 1\n+/dev/vda1 / ext4 defaults 0 1',
    ],
    planActions: [],
    warnings: ['no module undoes something'],
    interfaces: [
      {
        name: 'ens192',
        mac: '00:50:56:aa:bb:01',
        newName: 'ens192',
        addresses: ['192.168.10.5/24', '2001:db8::5/64'],
        tool: 'ifupdown',
        pinnedBy: '/etc/systemd/network/10-v2v-load-ens192.link',
      },
      {
        name: 'ens224',
        mac: '00:50:56:aa:bb:02',
        newName: 'ens224',
        addresses: [],
        tool: 'NetworkManager',
        pinnedBy: '/etc/systemd/network/10-v2v-load-ens224.link',
      },
    ],
    disks: [
      { path: '/srv/out/web-sda.qcow2', format: 'qcow2', dev: 'vda' },
      { path: '/srv/out/web-sdb.qcow2', format: 'qcow2', dev: 'vdb' },
    ],
    xmlPath: '/srv/out/web.xml',
    xml: "<domain type='kvm'>\n  <name>web</name>\n</domain>\n",
    stages: { 'read-metadata': 12, inspect: 4321, plan: 35, apply: 61234, 'storage-finish': 9050 },
    ...over,
  };
}

describe('formatConvertResult', () => {
  it('a conversion that booted (golden)', async () => {
    const text = formatConvertResult(
      result({ verify: { booted: true, seconds: 41.5, matched: 'login:', consoleTail: '' } }),
    );
    await expect(text).toMatchFileSnapshot(path.join(GOLDEN, 'converted.txt'));
    expect(text).not.toContain('Plan (nothing was written)');
  });

  it('a conversion that did not boot: the reason and the console tail (golden)', async () => {
    const text = formatConvertResult(
      result({
        modules: { hvsource: undefined, guestos: 'debian', hvtarget: 'kvm' },
        warnings: [],
        interfaces: [],
        verify: {
          booted: false,
          seconds: 300,
          reason: 'no login prompt within 300 s',
          consoleTail:
            'Begin: Running /scripts/local-block ... done.\nGave up waiting for root file system device.',
        },
      }),
    );
    await expect(text).toMatchFileSnapshot(path.join(GOLDEN, 'did-not-boot.txt'));
    expect(text).toContain('    | Gave up waiting for root file system device.');
  });

  it('a dry run: the plan and the domain XML, no XML path (golden)', async () => {
    const text = formatConvertResult(result({ dryRun: true, xmlPath: undefined, disks: [] }));
    await expect(text).toMatchFileSnapshot(path.join(GOLDEN, 'dry-run.txt'));
    expect(text.startsWith('Dry run of web:')).toBe(true);
    expect(text).not.toContain('domain XML: /srv');
  });
});
