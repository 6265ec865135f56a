/** The plan: reads through planned changes, device renaming, and the text of every action. */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bootDeviceDisks,
  describeAction,
  Plan,
  type PlannedAction,
  removePackagesArgv,
  rewriteDeviceNames,
} from '../../src/convert/plan.js';
import { MemGuest } from '../harness/mem-guest.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/convert');
const BY = 'test';

describe('MemGuest', () => {
  it('derives directories from file paths and lists direct children only', async () => {
    const g = new MemGuest({ '/etc/a/b/c': 'x', '/etc/a/d': 'y', '/etc/empty/': '' });
    expect(await g.ls('/etc')).toEqual(['a', 'empty']);
    expect(await g.ls('/etc/a')).toEqual(['b', 'd']);
    expect(await g.ls('/etc/a/')).toEqual(['b', 'd']);
    expect(await g.ls('/etc/empty')).toEqual([]);
    expect(await g.ls('/nope')).toEqual([]);
    expect(await g.exists('/etc/a/b')).toBe(true);
    expect(await g.exists('/etc/a/b/c')).toBe(true);
    expect(await g.exists('/etc/a/b/c/d')).toBe(false);
    expect(await g.readIfExists('/etc/a/d')).toBe('y');
    expect(await g.readIfExists('/etc/a')).toBeUndefined();
  });
});

describe('Plan reads', () => {
  const guest = () =>
    new MemGuest({ '/etc/hosts': '127.0.0.1 localhost\n', '/etc/motd': 'hi\n', '/etc/d/x': '1' });

  it('sees the writes and removals planned before them', async () => {
    const plan = new Plan(guest());
    await plan.write('/etc/new', 'n\n', BY, 'why');
    await plan.write('/etc/hosts', '127.0.0.1 localhost web\n', BY, 'why');
    await plan.remove('/etc/motd', BY, 'why');
    expect(await plan.read('/etc/new')).toBe('n\n');
    expect(await plan.exists('/etc/new')).toBe(true);
    expect(await plan.read('/etc/hosts')).toBe('127.0.0.1 localhost web\n');
    expect(await plan.read('/etc/motd')).toBeUndefined();
    expect(await plan.exists('/etc/motd')).toBe(false);
    // A file written again after its removal is there again.
    await plan.write('/etc/motd', 'back\n', BY, 'why');
    expect(await plan.read('/etc/motd')).toBe('back\n');
    expect(plan.actions.map((a) => [a.kind, 'path' in a ? a.path : ''])).toEqual([
      ['write-file', '/etc/new'],
      ['write-file', '/etc/hosts'],
      ['remove-file', '/etc/motd'],
      ['write-file', '/etc/motd'],
    ]);
    expect(plan.actions[3]).toMatchObject({ before: undefined });
  });

  it('merges planned files into ls (new ones added, removed ones gone, sorted)', async () => {
    const plan = new Plan(guest());
    await plan.write('/etc/aaa', '', BY, 'why');
    await plan.write('/etc/d/y', '', BY, 'why');
    await plan.remove('/etc/motd', BY, 'why');
    expect(await plan.ls('/etc')).toEqual(['aaa', 'd', 'hosts']);
    expect(await plan.ls('/etc/')).toEqual(['aaa', 'd', 'hosts']);
    expect(await plan.ls('/etc/d')).toEqual(['x', 'y']);
  });

  it('a recursive removal hides what was under it, planned or not', async () => {
    const plan = new Plan(guest());
    await plan.write('/etc/d/y', 'planned', BY, 'why');
    await plan.remove('/etc/d', BY, 'why', true);
    expect(await plan.read('/etc/d/x')).toBeUndefined();
    expect(await plan.read('/etc/d/y')).toBeUndefined();
    expect(await plan.exists('/etc/d/x')).toBe(false);
    expect(await plan.ls('/etc/d')).toEqual([]);
    expect(await plan.ls('/etc')).toEqual(['hosts', 'motd']);
    await plan.write('/etc/d/z', 'again', BY, 'why');
    expect(await plan.read('/etc/d/z')).toBe('again');
    expect(await plan.ls('/etc/d')).toEqual(['z']);
  });

  it('edit: no action when the file is absent or unchanged; write: none when equal', async () => {
    const plan = new Plan(guest());
    expect(await plan.edit('/etc/none', (t) => `${t}x`, BY, 'why')).toBe(false);
    expect(await plan.edit('/etc/hosts', (t) => t, BY, 'why')).toBe(false);
    await plan.write('/etc/motd', 'hi\n', BY, 'why');
    await plan.remove('/etc/none', BY, 'why');
    expect(plan.actions).toEqual([]);
    expect(await plan.edit('/etc/hosts', (t) => t.replace('localhost', 'lh'), BY, 'why')).toBe(
      true,
    );
    expect(plan.actions).toEqual([
      {
        kind: 'write-file',
        path: '/etc/hosts',
        content: '127.0.0.1 lh\n',
        mode: 0o644,
        before: '127.0.0.1 localhost\n',
        by: BY,
        why: 'why',
      },
    ]);
  });

  it('two edits of one file compose (the second edits the first one’s result)', async () => {
    const plan = new Plan(guest());
    await plan.edit('/etc/hosts', (t) => `${t}10.0.0.1 a\n`, BY, 'one');
    await plan.edit('/etc/hosts', (t) => `${t}10.0.0.2 b\n`, BY, 'two');
    expect(await plan.read('/etc/hosts')).toBe('127.0.0.1 localhost\n10.0.0.1 a\n10.0.0.2 b\n');
    expect(plan.actions.map((a) => (a.kind === 'write-file' ? a.before : ''))).toEqual([
      '127.0.0.1 localhost\n',
      '127.0.0.1 localhost\n10.0.0.1 a\n',
    ]);
  });

  it('plans no package removal for an empty list', () => {
    const plan = new Plan(guest());
    plan.removePackages('dpkg', [], BY, 'why');
    expect(plan.actions).toEqual([]);
    expect(removePackagesArgv('dpkg', ['a', 'b'])).toEqual(['dpkg', '--purge', 'a', 'b']);
    expect(removePackagesArgv('rpm', ['a'])).toEqual(['rpm', '-e', 'a']);
  });
});

describe('rewriteDeviceNames', () => {
  const map = { sda: 'vda', sdb: 'vdb', xvda: 'vda', nvme0n1: 'vdc', hda: 'vdd' };

  it.each([
    ['/dev/sda1 / ext4', '/dev/vda1 / ext4'],
    ['/dev/sdb none swap', '/dev/vdb none swap'],
    ['/dev/sda10 /srv', '/dev/vda10 /srv'],
    ['root=/dev/xvda2 ro', 'root=/dev/vda2 ro'],
    ['/dev/nvme0n1p2 /', '/dev/vdc2 /'],
    ['/dev/nvme0n1 whole', '/dev/vdc whole'],
    ['/dev/hda3', '/dev/vdd3'],
    ['resume=/dev/sdb5 root=/dev/sda1', 'resume=/dev/vdb5 root=/dev/vda1'],
  ])('%s → %s', (from, to) => {
    expect(rewriteDeviceNames(from, map)).toBe(to);
  });

  it.each([
    '/dev/sdaa1 /data',
    '/dev/sdc1 /other',
    '/dev/sr0 /media/cdrom0',
    '/dev/xvdb1',
    '/dev/nvme0n10p1',
    '/dev/nvme1n1p1',
    '/dev/disk/by-uuid/1234 /',
    '/dev/mapper/vg-root /',
    'UUID=0d9c sda1 /dev/sda_x',
    'LABEL=root /',
  ])('leaves %s alone', (text) => {
    expect(rewriteDeviceNames(text, map)).toBe(text);
  });

  it('renames /dev/sdaa when mapped, not as sda + a', () => {
    expect(rewriteDeviceNames('/dev/sdaa1 /dev/sda1', { sdaa: 'vdaa' })).toBe(
      '/dev/vdaa1 /dev/sda1',
    );
  });

  it('swaps names in one pass (sda → sdb and sdb → sda)', () => {
    expect(rewriteDeviceNames('/dev/sda1 /dev/sdb1', { sda: 'sdb', sdb: 'sda' })).toBe(
      '/dev/sdb1 /dev/sda1',
    );
  });

  it('writes NVMe partitions with p when the target is NVMe', () => {
    expect(rewriteDeviceNames('/dev/sda2', { sda: 'nvme0n1' })).toBe('/dev/nvme0n1p2');
  });

  it('an empty map changes nothing', () => {
    expect(rewriteDeviceNames('/dev/sda1', {})).toBe('/dev/sda1');
  });
});

describe('bootDeviceDisks', () => {
  it('lists the disks root= and resume= name, once each', () => {
    const cfg = [
      "set root='hd0,msdos1'",
      'search --no-floppy --fs-uuid --set=root 0d9c',
      '  linux /boot/vmlinuz-6.1.0-28-amd64 root=/dev/sda1 ro resume=/dev/sdb5 quiet',
      '  linux /boot/vmlinuz-6.1.0-27-amd64 root=/dev/sda1 ro',
      '  linux /boot/vmlinuz-5.10 root=/dev/nvme0n1p2 resume=/dev/xvda3',
      '  linux /boot/vmlinuz-x root=UUID=0d9c resume=LABEL=swap',
      '  linux /boot/vmlinuz-y root=/dev/mapper/vg-root',
    ].join('\n');
    expect(bootDeviceDisks(cfg)).toEqual(['sda', 'sdb', 'nvme0n1', 'xvda']);
  });

  it('finds none in a UUID-only configuration', () => {
    expect(bootDeviceDisks('linux /vmlinuz root=UUID=0d9c ro')).toEqual([]);
  });
});

describe('describeAction', () => {
  it('describes every kind of action, with a diff for file writes (golden)', async () => {
    const guest = new MemGuest({
      '/etc/fstab': '# fstab\n/dev/sda1 / ext4 errors=remount-ro 0 1\n/dev/sda5 none swap sw 0 0\n',
      '/etc/motd': 'hello\n',
      '/etc/vmware-tools/tools.conf': '',
    });
    const plan = new Plan(guest);
    await plan.edit(
      '/etc/fstab',
      (t) => rewriteDeviceNames(t, { sda: 'vda' }),
      'guestos/debian',
      'device names',
    );
    await plan.write(
      '/etc/systemd/network/10-x.link',
      '[Match]\nMACAddress=00:50:56:aa:bb:01\n',
      'guestos/debian',
      'pin',
    );
    await plan.remove('/etc/motd', 'hvsource/vmware-linux', 'gone');
    await plan.remove('/etc/vmware-tools', 'hvsource/vmware-linux', 'tarball', true);
    plan.copy(
      '/boot/initrd.img-6.1.0-28-amd64',
      '/boot/initrd.img-6.1.0-28-amd64.pre-v2v-load',
      'guestos/debian',
      'keep',
    );
    plan.upload('/srv/pkgs/linux.deb', '/var/tmp/k.deb', 'hvtarget/kvm', 'kernel');
    plan.removePackages(
      'dpkg',
      ['open-vm-tools', 'open-vm-tools-desktop'],
      'guestos/debian',
      'tools',
    );
    plan.run(['update-initramfs', '-u', '-k', '6.1.0-28-amd64'], 'guestos/debian', 'rebuild');
    plan.rewriteDevices(
      '/boot/grub/grub.cfg',
      { sda: 'vda', sdb: 'vdb' },
      ['vda', 'vdb'],
      'guestos/debian',
      'check',
    );
    plan.rewriteDevices(
      '/boot/extlinux/extlinux.conf',
      {},
      ['sda'],
      'guestos/debian',
      'check only',
    );
    const text = plan.actions.map((a) => describeAction(a)).join('\n\n');
    await expect(`${text}\n`).toMatchFileSnapshot(path.join(GOLDEN, 'describe-actions.txt'));
    // Without the diff: the head line only.
    const first = plan.actions[0] as PlannedAction;
    expect(describeAction(first, false)).toBe('[guestos/debian] edit /etc/fstab: device names');
    expect(describeAction(plan.actions[1] as PlannedAction, false)).toBe(
      '[guestos/debian] create /etc/systemd/network/10-x.link: pin',
    );
  });
});
