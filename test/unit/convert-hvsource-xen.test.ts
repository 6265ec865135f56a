/** HVSource Xen, Linux: console, getty units, driver aliases, bootloader (golden plan). */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Plan } from '../../src/convert/plan.js';
import { DebianGuestOs } from '../../src/guestos/debian.js';
import {
  dropXenAliases,
  GRUB_INSTALL_BOOT_DISK,
  XenLinuxSource,
  xenConsoleToSerial,
} from '../../src/hvsource/xen-linux.js';
import {
  conversionContext,
  debianInspection,
  kernel,
  MemGuest,
  planText,
  vmwareSource,
  xenGuestFiles,
  xenPvSource,
} from '../harness/mem-guest.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/convert/hvsource-xen');
const xen = new XenLinuxSource();

async function unconfigure(files: Record<string, string>, over = {}) {
  const ctx = conversionContext(xenPvSource(), debianInspection({ root: '/dev/sda1', ...over }));
  const plan = new Plan(new MemGuest(files));
  await xen.unconfigureGuest(plan, new DebianGuestOs(), ctx);
  return plan;
}

describe('xenConsoleToSerial', () => {
  it.each([
    ['console=hvc0 quiet', 'console=ttyS0 quiet'],
    ['console=xvc0,115200', 'console=ttyS0,115200'],
    ['co:2345:respawn:/sbin/getty -L hvc0 9600', 'co:2345:respawn:/sbin/getty -L ttyS0 9600'],
    ['hvc0\n', 'ttyS0\n'],
  ])('%j → %j', (from, to) => {
    expect(xenConsoleToSerial(from)).toBe(to);
  });

  it.each(['console=hvc1', 'console=tty0 hvc00', 'xhvc0'])('leaves %j alone', (t) => {
    expect(xenConsoleToSerial(t)).toBe(t);
  });
});

describe('dropXenAliases', () => {
  it('drops the aliases of the Xen PV disk and NIC drivers, keeps the rest', () => {
    expect(
      dropXenAliases(
        'alias scsi_hostadapter xenblk\n  alias eth0 xennet \nalias eth1 xen-netfront\nalias block-major-202 xen-vbd\nalias eth2 e1000\noptions xen_blkfront max=64\n# alias eth0 xennet\n',
      ),
    ).toBe('alias eth2 e1000\noptions xen_blkfront max=64\n# alias eth0 xennet\n');
  });
});

describe('XenLinuxSource', () => {
  it('applies to Xen PV and FV Linux guests only', () => {
    expect(xen.applies(xenPvSource(), debianInspection())).toBe(true);
    expect(
      xen.applies(xenPvSource({ hypervisor: 'xen-fv', xenPv: undefined }), debianInspection()),
    ).toBe(true);
    expect(xen.applies(vmwareSource(), debianInspection())).toBe(false);
    expect(xen.applies(xenPvSource(), debianInspection({ type: 'windows' }))).toBe(false);
  });

  it('Xen PV Debian: console → ttyS0, hvc0 getty gone, aliases gone, grub in the boot sector (golden)', async () => {
    const plan = await unconfigure(xenGuestFiles());
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'debian-pv.txt'));
    expect(await plan.read('/etc/default/grub')).toContain(
      'GRUB_CMDLINE_LINUX="console=ttyS0 earlyprintk=xen root=/dev/xvda1"',
    );
    expect(await plan.read('/etc/inittab')).toContain(
      'co:2345:respawn:/sbin/getty -L ttyS0 9600 vt100',
    );
    expect(await plan.ls('/etc/systemd/system/getty.target.wants')).toEqual(['getty@tty1.service']);
    expect(await plan.read('/etc/modprobe.d/xen.conf')).toBe(
      '# Xen PV drivers\noptions xen_blkfront max=64\n',
    );
    expect(plan.actions.filter((a) => a.kind === 'run')).toEqual([
      expect.objectContaining({ argv: ['sh', '-c', GRUB_INSTALL_BOOT_DISK] }),
    ]);
    expect(plan.warnings).toEqual([]);
  });

  it('the console in /etc/default/grub.d/*.cfg goes to ttyS0 too', async () => {
    const plan = await unconfigure({
      '/etc/default/grub.d/xen.cfg': 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX console=hvc0"\n',
    });
    expect(await plan.read('/etc/default/grub.d/xen.cfg')).toBe(
      'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX console=ttyS0"\n',
    );
  });

  it('a Xen-only kernel beside a usable one: warned about, not rebuilt', async () => {
    const plan = await unconfigure(
      {},
      { kernels: [kernel('2.6.18-xen', true, true), kernel('2.6.32-5-amd64')] },
    );
    expect(plan.warnings).toEqual([
      'Xen-only kernels (2.6.18-xen) stay installed but are not rebuilt; the guest boots 2.6.32-5-amd64',
    ]);
  });

  it('Xen PV without grub2 (grub-legacy menu.lst): a warning instead of grub-install', async () => {
    const plan = await unconfigure(
      { '/boot/grub/menu.lst': 'kernel /boot/vmlinuz root=/dev/xvda1 console=xvc0\n' },
      { bootloader: { kind: 'grub-legacy', config: '/boot/grub/menu.lst' } },
    );
    expect(plan.actions.some((a) => a.kind === 'run')).toBe(false);
    expect(plan.warnings).toEqual([
      'the guest booted through /usr/bin/pygrub and has no grub2 (bootloader: grub-legacy) to install in its boot sector: it may not boot on KVM',
    ]);
    expect(await plan.read('/boot/grub/menu.lst')).toBe(
      'kernel /boot/vmlinuz root=/dev/xvda1 console=ttyS0\n',
    );
  });

  it('Xen FV: no boot sector change; nothing to edit gives an empty plan', async () => {
    const ctx = conversionContext(
      xenPvSource({ hypervisor: 'xen-fv', xenPv: undefined }),
      debianInspection(),
    );
    const plan = new Plan(new MemGuest({ '/etc/default/grub': 'GRUB_CMDLINE_LINUX=""\n' }));
    await xen.unconfigureGuest(plan, new DebianGuestOs(), ctx);
    expect(plan.actions).toEqual([]);
  });
});
