/**
 * GuestOS Debian (initramfs-tools, dracut) and RHEL: drivers, packages, device names and the
 * boot rebuild, each alone and as whole conversion plans (golden) with the source and target
 * modules, planned in the pipeline's order.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GuestInspection } from '../../src/convert/inspection.js';
import { Plan } from '../../src/convert/plan.js';
import { DebianGuestOs } from '../../src/guestos/debian.js';
import { RhelGuestOs } from '../../src/guestos/rhel.js';
import { VmwareLinuxSource } from '../../src/hvsource/vmware-linux.js';
import { XenLinuxSource } from '../../src/hvsource/xen-linux.js';
import { KvmTarget, VIRTIO_DRIVERS } from '../../src/hvtarget/kvm.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import {
  conversionContext,
  DEBIAN_VMWARE_PACKAGES,
  debianInspection,
  debianVmwareGuestFiles,
  debianVmwareUuidGuestFiles,
  kernel,
  MemGuest,
  planConversion,
  planText,
  sourceDisk,
  vmwareSource,
  xenGuestFiles,
  xenPvSource,
} from '../harness/mem-guest.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/convert/guestos');
const debian = new DebianGuestOs();
const rhel = new RhelGuestOs();
const kvm = new KvmTarget();

/** The VMware guest of debianVmwareGuestFiles: two pvscsi disks, one vmxnet3 NIC. */
function twoDiskVmware(): SourceGuest {
  return vmwareSource({
    disks: [
      sourceDisk({ slot: 'scsi0:0', path: '/srv/vm/web/web.vmdk' }),
      sourceDisk({ slot: 'scsi0:1', unit: 1, path: '/srv/vm/web/web_1.vmdk' }),
    ],
  });
}

const vmwareDebian = (over: Partial<GuestInspection> = {}) =>
  debianInspection({ packages: DEBIAN_VMWARE_PACKAGES, ...over });

describe('applies', () => {
  it('Debian to the Debian family, RHEL to the RHEL family, neither to Windows', () => {
    expect(debian.applies(debianInspection())).toBe(true);
    expect(debian.applies(debianInspection({ family: 'rhel' }))).toBe(false);
    expect(rhel.applies(debianInspection({ family: 'rhel' }))).toBe(true);
    expect(rhel.applies(debianInspection({ family: 'rhel', type: 'windows' }))).toBe(false);
  });
});

describe('enableDrivers', () => {
  const ctx = (tool: GuestInspection['initramfsTool']) =>
    conversionContext(vmwareSource(), debianInspection({ initramfsTool: tool }));

  it('initramfs-tools: appends only the drivers the modules file lacks (comments do not count)', async () => {
    const plan = new Plan(
      new MemGuest({
        '/etc/initramfs-tools/modules': '# virtio_net\nvmw_pvscsi\nvirtio_blk\nvirtio_pci  # PCI\n',
      }),
    );
    await debian.enableDrivers(plan, VIRTIO_DRIVERS, ctx('initramfs-tools'));
    expect(await plan.read('/etc/initramfs-tools/modules')).toBe(
      '# virtio_net\nvmw_pvscsi\nvirtio_blk\nvirtio_pci  # PCI\n# Added by v2v-load for KVM:\nvirtio_scsi\nvirtio_net\nvirtio_console\n',
    );
    expect(plan.actions).toHaveLength(1);
    expect(plan.actions[0]).toMatchObject({
      why: 'load virtio_scsi, virtio_net, virtio_console from the initramfs',
    });
  });

  it('initramfs-tools: no action when every driver is listed; a file without a final newline gets one', async () => {
    const all = new Plan(
      new MemGuest({ '/etc/initramfs-tools/modules': `${VIRTIO_DRIVERS.join('\n')}\n` }),
    );
    await debian.enableDrivers(all, VIRTIO_DRIVERS, ctx('initramfs-tools'));
    expect(all.actions).toEqual([]);
    const noNl = new Plan(new MemGuest({ '/etc/initramfs-tools/modules': 'ata_piix' }));
    await debian.enableDrivers(noNl, ['virtio_blk'], ctx('initramfs-tools'));
    expect(await noNl.read('/etc/initramfs-tools/modules')).toBe(
      'ata_piix\n# Added by v2v-load for KVM:\nvirtio_blk\n',
    );
    const none = new Plan(new MemGuest());
    await debian.enableDrivers(none, ['virtio_blk'], ctx('initramfs-tools'));
    expect(await none.read('/etc/initramfs-tools/modules')).toBe(
      '# Added by v2v-load for KVM:\nvirtio_blk\n',
    );
  });

  it('dracut: a configuration file adding the drivers', async () => {
    const plan = new Plan(new MemGuest());
    await rhel.enableDrivers(plan, VIRTIO_DRIVERS, ctx('dracut'));
    expect(plan.actions).toEqual([
      expect.objectContaining({
        kind: 'write-file',
        path: '/etc/dracut.conf.d/90-v2v-load-virtio.conf',
        before: undefined,
        content:
          '# Written by v2v-load: drivers KVM\'s disks and NICs need at boot.\nadd_drivers+=" virtio_pci virtio_blk virtio_scsi virtio_net virtio_console "\n',
      }),
    ]);
  });

  it('no initramfs tool: a warning, no action; no drivers: nothing', async () => {
    const plan = new Plan(new MemGuest());
    await debian.enableDrivers(plan, ['virtio_blk'], ctx('none'));
    await debian.enableDrivers(plan, [], ctx('initramfs-tools'));
    expect(plan.actions).toEqual([]);
    expect(plan.warnings).toEqual([
      'no initramfs tool found in the guest: virtio_blk must be built into the kernel',
    ]);
  });
});

describe('removeApplications', () => {
  it('removes only the installed packages, with the family tool', async () => {
    const ctx = conversionContext(
      vmwareSource(),
      debianInspection({ packages: ['a', 'open-vm-tools'] }),
    );
    const plan = new Plan(new MemGuest());
    await debian.removeApplications(plan, ['open-vm-tools', 'open-vm-tools-desktop'], ctx);
    await rhel.removeApplications(plan, ['a'], ctx);
    await debian.removeApplications(plan, ['not-installed'], ctx);
    expect(
      plan.actions.map((a) =>
        a.kind === 'remove-packages' ? [a.manager, a.by, ...a.packages] : [],
      ),
    ).toEqual([
      ['dpkg', 'guestos/debian', 'open-vm-tools'],
      ['rpm', 'guestos/rhel', 'a'],
    ]);
  });
});

describe('remapDeviceNames', () => {
  it('rewrites fstab, crypttab, resume, grub defaults and grub.cfg; UUID= untouched', async () => {
    const ctx = conversionContext(twoDiskVmware(), vmwareDebian());
    const files = debianVmwareGuestFiles();
    files['/etc/fstab'] +=
      'UUID=0d9c6a3e /data ext4 defaults 0 2\nLABEL=logs /var/log ext4 defaults 0 2\n';
    const plan = new Plan(new MemGuest(files));
    await debian.remapDeviceNames(plan, ctx.target.deviceMap, ctx);
    expect(plan.actions.map((a) => (a.kind === 'write-file' ? a.path : a.kind))).toEqual([
      '/etc/fstab',
      '/etc/crypttab',
      '/etc/default/grub',
      '/etc/initramfs-tools/conf.d/resume',
      '/boot/grub/grub.cfg',
    ]);
    const fstab = (await plan.read('/etc/fstab')) as string;
    expect(fstab).not.toMatch(/\/dev\/sd[ab]/);
    expect(fstab).toContain('/dev/vdb1\t/srv');
    expect(fstab).toContain('/dev/sr0\t/media/cdrom0');
    expect(fstab).toContain('UUID=0d9c6a3e /data');
    expect(fstab).toContain('LABEL=logs /var/log');
    expect(await plan.read('/etc/crypttab')).toContain('srv_crypt\t/dev/vdb2\tnone\tluks');
    expect(await plan.read('/etc/initramfs-tools/conf.d/resume')).toBe('RESUME=/dev/vda5\n');
  });

  it('edits Boot Loader Specification entries too', async () => {
    const ctx = conversionContext(vmwareSource(), debianInspection({ family: 'rhel' }));
    const plan = new Plan(
      new MemGuest({
        '/boot/loader/entries/abc-5.14.0-427.el9.x86_64.conf':
          'title Rocky Linux\nlinux /vmlinuz-5.14.0-427.el9.x86_64\noptions root=/dev/sda2 ro resume=/dev/sda3\n',
        '/boot/loader/entries/README': '/dev/sda1\n',
      }),
    );
    await rhel.remapDeviceNames(plan, { sda: 'vda' }, ctx);
    expect(plan.actions.map((a) => (a.kind === 'write-file' ? a.path : a.kind))).toEqual([
      '/boot/loader/entries/abc-5.14.0-427.el9.x86_64.conf',
    ]);
    expect(await plan.read('/boot/loader/entries/abc-5.14.0-427.el9.x86_64.conf')).toContain(
      'options root=/dev/vda2 ro resume=/dev/vda3',
    );
  });

  it('edits /etc/default/grub.d/*.cfg and the LVM filter too', async () => {
    const ctx = conversionContext(vmwareSource(), debianInspection());
    const plan = new Plan(
      new MemGuest({
        '/etc/default/grub.d/50-cloudimg.cfg':
          'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX root=/dev/sda1"\n',
        '/etc/default/grub.d/README': '/dev/sda1\n',
        '/etc/lvm/lvm.conf': 'devices {\n\tfilter = [ "a|^/dev/sda.*|", "r|.*|" ]\n}\n',
      }),
    );
    await debian.remapDeviceNames(plan, { sda: 'vda' }, ctx);
    expect(plan.actions.map((a) => (a.kind === 'write-file' ? a.path : a.kind))).toEqual([
      '/etc/lvm/lvm.conf',
      '/etc/default/grub.d/50-cloudimg.cfg',
    ]);
    expect(await plan.read('/etc/lvm/lvm.conf')).toContain('"a|^/dev/vda.*|"');
  });

  it('warns about disks named by ID or path in fstab and crypttab, whatever the bus', async () => {
    const ctx = conversionContext(vmwareSource(), debianInspection(), { virtio: false });
    const plan = new Plan(
      new MemGuest({
        '/etc/fstab':
          '/dev/disk/by-id/scsi-36000c29a1b2c3d4e-part1 / ext4 defaults 0 1\n/dev/disk/by-uuid/0d9c /srv ext4 defaults 0 2\n/dev/disk/by-path/pci-0000:03:00.0-scsi-0:0:1:0-part1 /data ext4 defaults 0 2\n',
        '/etc/crypttab': 'c UUID=0d9c none luks\n',
      }),
    );
    await debian.remapDeviceNames(plan, {}, ctx);
    expect(plan.actions).toEqual([]);
    expect(plan.warnings).toEqual([
      '/etc/fstab names /dev/disk/by-id/scsi-36000c29a1b2c3d4e-part1, /dev/disk/by-path/pci-0000:03:00.0-scsi-0:0:1:0-part1: disk IDs and paths change on the target bus; use UUID= or LABEL=',
    ]);
  });

  it('an empty map edits nothing', async () => {
    const ctx = conversionContext(twoDiskVmware(), vmwareDebian());
    const plan = new Plan(new MemGuest(debianVmwareGuestFiles()));
    await debian.remapDeviceNames(plan, {}, ctx);
    expect(plan.actions).toEqual([]);
  });
});

describe('prepareBootable', () => {
  it('without new kernels grub.cfg is only checked (its device names were edited with the rest)', async () => {
    const ctx = conversionContext(twoDiskVmware(), vmwareDebian());
    const plan = new Plan(new MemGuest());
    await debian.prepareBootable(plan, ctx);
    expect(plan.actions.map((a) => (a.kind === 'run' ? a.argv.join(' ') : a.kind))).toEqual([
      'copy-file',
      'update-initramfs -u -k 6.1.0-28-amd64',
      'rewrite-devices',
    ]);
    expect(plan.actions.at(-1)).toMatchObject({
      path: '/boot/grub/grub.cfg',
      map: {},
      expect: ['vda', 'vdb'],
    });
  });

  it('keeps the old initramfs, rebuilds each kernel with virtio, regenerates grub.cfg after a --with kernel and checks it', async () => {
    const ctx = conversionContext(
      twoDiskVmware(),
      vmwareDebian({
        kernels: [
          kernel('5.10.0-30-amd64', false),
          kernel('6.1.0-28-amd64'),
          kernel('6.1.0-27-xen', true, true),
        ],
      }),
      { withFiles: { kernel: '/srv/pkgs/linux-image-6.1.0-28-amd64.deb' } },
    );
    const plan = new Plan(new MemGuest());
    await debian.prepareBootable(plan, ctx);
    expect(plan.actions).toEqual([
      expect.objectContaining({
        kind: 'copy-file',
        from: '/boot/initrd.img-6.1.0-28-amd64',
        to: '/boot/initrd.img-6.1.0-28-amd64.pre-v2v-load',
      }),
      expect.objectContaining({
        kind: 'run',
        argv: ['update-initramfs', '-u', '-k', '6.1.0-28-amd64'],
      }),
      expect.objectContaining({
        kind: 'run',
        argv: ['grub-mkconfig', '-o', '/boot/grub/grub.cfg'],
      }),
      expect.objectContaining({
        kind: 'rewrite-devices',
        path: '/boot/grub/grub.cfg',
        map: { sda: 'vda', sdb: 'vdb' },
        expect: ['vda', 'vdb'],
      }),
    ]);
  });

  it('after a --with kernel whose package regenerated grub.cfg: no second grub-mkconfig, appliance names rewritten', async () => {
    const ctx = conversionContext(
      vmwareSource(),
      vmwareDebian({
        kernels: [
          kernel('6.1.0-50-amd64', false),
          { ...kernel('6.1.0-57-amd64'), initrd: undefined },
        ],
      }),
      { withFiles: { kernel: '/srv/pkgs/linux-image-6.1.0-57-amd64.deb' } },
    );
    const plan = new Plan(
      new MemGuest({
        '/boot/grub/grub.cfg':
          "menuentry 'Debian GNU/Linux' {\n\tlinux\t/boot/vmlinuz-6.1.0-57-amd64 root=/dev/sda1 ro\n}\n",
      }),
    );
    await debian.prepareBootable(plan, ctx);
    expect(plan.actions.map((a) => (a.kind === 'run' ? a.argv.join(' ') : a.kind))).toEqual([
      // the package's scripts made no initramfs: created, not updated
      'update-initramfs -c -k 6.1.0-57-amd64',
      'rewrite-devices',
    ]);
    expect(plan.actions.at(-1)).toMatchObject({ map: {}, expect: ['vda'] });
    expect(plan.warnings).toEqual([]);
  });

  it('warns when the newest kernel, the one grub boots by default, has no virtio', async () => {
    const ctx = conversionContext(
      vmwareSource(),
      vmwareDebian({ kernels: [kernel('6.1.0-28-amd64'), kernel('6.1.0-50-amd64', false)] }),
    );
    const plan = new Plan(new MemGuest());
    await debian.prepareBootable(plan, ctx);
    expect(plan.warnings).toEqual([
      "6.1.0-50-amd64 is the newest kernel and has no virtio drivers: the bootloader's default entry boots it, and it will not find its disk",
    ]);
  });

  it('removes the LVM devices file (disk IDs change) before the initramfs rebuild', async () => {
    const ctx = conversionContext(
      vmwareSource(),
      debianInspection({ family: 'rhel', initramfsTool: 'dracut' }),
    );
    const plan = new Plan(
      new MemGuest({
        '/etc/lvm/devices/system.devices':
          'VERSION=1.1.1\nIDTYPE=sys_wwid IDNAME=naa.6000c29 DEVNAME=/dev/sda2 PVID=x\n',
      }),
    );
    await rhel.prepareBootable(plan, ctx);
    expect(plan.actions.map((a) => a.kind)).toEqual([
      'remove-file',
      'copy-file',
      'run',
      'rewrite-devices',
    ]);
    expect(plan.actions[0]).toMatchObject({
      path: '/etc/lvm/devices/system.devices',
      recursive: false,
    });
  });

  it('dracut rebuilds into the initramfs path (the family one when inspection found none)', async () => {
    const k = { ...kernel('5.14.0-427.el9.x86_64'), initrd: undefined };
    const ctx = conversionContext(
      vmwareSource(),
      debianInspection({
        family: 'rhel',
        initramfsTool: 'dracut',
        kernels: [k],
        bootloader: { kind: 'grub2', config: '/boot/grub2/grub.cfg' },
      }),
    );
    const plan = new Plan(new MemGuest());
    await rhel.prepareBootable(plan, ctx);
    expect(plan.actions.map((a) => (a.kind === 'run' ? a.argv.join(' ') : a.kind))).toEqual([
      'dracut --force --no-hostonly-cmdline /boot/initramfs-5.14.0-427.el9.x86_64.img 5.14.0-427.el9.x86_64',
      'rewrite-devices',
    ]);
  });

  it('extlinux: the configuration is checked, not regenerated; no bootloader: a warning', async () => {
    const ext = conversionContext(
      vmwareSource(),
      debianInspection({
        bootloader: { kind: 'extlinux', config: '/boot/extlinux/extlinux.conf' },
      }),
    );
    const plan = new Plan(new MemGuest());
    await debian.prepareBootable(plan, ext);
    expect(plan.actions.at(-1)).toEqual(
      expect.objectContaining({
        kind: 'rewrite-devices',
        path: '/boot/extlinux/extlinux.conf',
        map: {},
        expect: ['vda'],
      }),
    );
    expect(plan.actions.some((a) => a.kind === 'run' && a.argv[0] === 'grub-mkconfig')).toBe(false);
    const none = conversionContext(
      vmwareSource(),
      debianInspection({ bootloader: { kind: 'unknown' } }),
    );
    const plan2 = new Plan(new MemGuest());
    await debian.prepareBootable(plan2, none);
    expect(plan2.warnings).toEqual([
      'no bootloader configuration found in the guest: it may not boot',
    ]);
  });

  it('the appliance map covers more than 26 disks (sdaa → vdaa)', async () => {
    const disks = Array.from({ length: 27 }, (_, i) => sourceDisk({ slot: `scsi0:${i}`, unit: i }));
    const ctx = conversionContext(vmwareSource({ disks }), debianInspection(), {
      withFiles: { kernel: '/srv/pkgs/linux-image.deb' },
    });
    const plan = new Plan(new MemGuest());
    await debian.prepareBootable(plan, ctx);
    const check = plan.actions.find((a) => a.kind === 'rewrite-devices');
    expect(check?.kind === 'rewrite-devices' && check.map.sdaa).toBe('vdaa');
    expect(check?.kind === 'rewrite-devices' && check.expect.at(-1)).toBe('vdaa');
  });
});

describe('whole conversion plans (golden)', () => {
  it('VMware Debian on /dev/sda1 → vda (initramfs-tools)', async () => {
    const ctx = conversionContext(twoDiskVmware(), vmwareDebian());
    const plan = await planConversion(new MemGuest(debianVmwareGuestFiles()), ctx, {
      hvsource: new VmwareLinuxSource(),
      guestos: debian,
      hvtarget: kvm,
    });
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'vmware-debian-virtio.txt'));
    expect(await plan.read('/etc/fstab')).toContain('/dev/vda1\t/\text4');
    expect(await plan.read('/etc/initramfs-tools/modules')).toMatch(/\nvirtio_blk\n/);
    expect(plan.actions.filter((a) => a.kind === 'remove-packages')).toHaveLength(1);
    expect(plan.warnings).toEqual([]);
  });

  it('VMware Debian with dracut', async () => {
    const ctx = conversionContext(
      twoDiskVmware(),
      vmwareDebian({
        initramfsTool: 'dracut',
        packages: [...DEBIAN_VMWARE_PACKAGES.filter((p) => p !== 'initramfs-tools'), 'dracut'],
      }),
    );
    const plan = await planConversion(new MemGuest(debianVmwareGuestFiles()), ctx, {
      hvsource: new VmwareLinuxSource(),
      guestos: debian,
      hvtarget: kvm,
    });
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'vmware-debian-dracut.txt'));
    expect(
      plan.actions.some(
        (a) => a.kind === 'write-file' && a.path === '/etc/initramfs-tools/modules',
      ),
    ).toBe(false);
    expect(plan.actions).toContainEqual(
      expect.objectContaining({
        argv: [
          'dracut',
          '--force',
          '--no-hostonly-cmdline',
          '/boot/initrd.img-6.1.0-28-amd64',
          '6.1.0-28-amd64',
        ],
      }),
    );
  });

  it('VMware Debian --no-virtio (IDE): device names stay sd*, IDE drivers and no virtio ones', async () => {
    const ctx = conversionContext(twoDiskVmware(), vmwareDebian(), { virtio: false });
    const plan = await planConversion(new MemGuest(debianVmwareGuestFiles()), ctx, {
      hvsource: new VmwareLinuxSource(),
      guestos: debian,
      hvtarget: kvm,
    });
    await expect(planText(plan)).toMatchFileSnapshot(
      path.join(GOLDEN, 'vmware-debian-no-virtio.txt'),
    );
    const edited = plan.actions.flatMap((a) => (a.kind === 'write-file' ? [a.path] : []));
    expect(edited).not.toContain('/etc/fstab');
    // IDE drivers (ata_piix was listed already), no virtio ones.
    const modules = (await plan.read('/etc/initramfs-tools/modules')) as string;
    expect(modules).not.toContain('virtio');
    expect(modules.endsWith('ata_piix\n# Added by v2v-load for KVM:\nata_generic\nsd_mod\n')).toBe(
      true,
    );
    expect(plan.actions).toContainEqual(
      expect.objectContaining({ kind: 'rewrite-devices', map: {}, expect: ['sda', 'sdb'] }),
    );
  });

  it('VMware Debian with root=UUID: no device edits needed', async () => {
    const ctx = conversionContext(twoDiskVmware(), vmwareDebian());
    const plan = await planConversion(new MemGuest(debianVmwareUuidGuestFiles()), ctx, {
      hvsource: new VmwareLinuxSource(),
      guestos: debian,
      hvtarget: kvm,
    });
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'vmware-debian-uuid.txt'));
    const edited = plan.actions.flatMap((a) => (a.kind === 'write-file' ? [a.path] : []));
    for (const f of ['/etc/fstab', '/etc/crypttab', '/etc/default/grub', '/boot/grub/grub.cfg']) {
      expect(edited).not.toContain(f);
    }
  });

  it('Xen PV Debian on xvda → vda', async () => {
    const files = {
      ...xenGuestFiles(),
      '/etc/fstab': '/dev/xvda1 / ext4 errors=remount-ro 0 1\n/dev/xvda2 none swap sw 0 0\n',
      '/etc/initramfs-tools/modules': '# modules\nxen-blkfront\n',
      '/etc/network/interfaces':
        'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n',
      '/lib/systemd/systemd-udevd': '',
    };
    const ctx = conversionContext(
      xenPvSource(),
      debianInspection({ packages: ['bash', 'grub-pc', 'initramfs-tools', 'xe-guest-utilities'] }),
    );
    const plan = await planConversion(new MemGuest(files), ctx, {
      hvsource: new XenLinuxSource(),
      guestos: debian,
      hvtarget: kvm,
    });
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'xen-pv-debian.txt'));
    expect(await plan.read('/etc/default/grub')).toContain(
      'GRUB_CMDLINE_LINUX="console=ttyS0 earlyprintk=xen root=/dev/vda1"',
    );
    expect(await plan.read('/etc/fstab')).toBe(
      '/dev/vda1 / ext4 errors=remount-ro 0 1\n/dev/vda2 none swap sw 0 0\n',
    );
    expect(plan.actions).toContainEqual(
      expect.objectContaining({ kind: 'rewrite-devices', map: {}, expect: ['vda'] }),
    );
  });

  it('VMware RHEL 9 (dracut, BLS, NetworkManager)', async () => {
    const files = {
      '/etc/fstab': '/dev/sda2 / xfs defaults 0 0\n/dev/sda1 /boot xfs defaults 0 0\n',
      '/etc/default/grub':
        'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="resume=/dev/sda3 rhgb quiet"\nGRUB_ENABLE_BLSCFG=true\n',
      '/boot/loader/entries/4f2c-5.14.0-427.el9.x86_64.conf':
        'title Rocky Linux (5.14.0-427.el9.x86_64) 9.4 (Blue Onyx)\nversion 5.14.0-427.el9.x86_64\nlinux /vmlinuz-5.14.0-427.el9.x86_64\ninitrd /initramfs-5.14.0-427.el9.x86_64.img\noptions root=/dev/sda2 ro resume=/dev/sda3 rhgb quiet\n',
      '/boot/grub2/grub.cfg': '### BEGIN /etc/grub.d/10_linux ###\ninsmod blscfg\nblscfg\n',
      '/etc/NetworkManager/system-connections/ens192.nmconnection':
        '[connection]\nid=ens192\ntype=ethernet\ninterface-name=ens192\n\n[ipv4]\naddress1=10.1.2.3/24,10.1.2.1\nmethod=manual\n',
      '/usr/lib/systemd/systemd-udevd': '',
      '/etc/yum.repos.d/vmware-tools.repo': '[vmware-tools]\n',
      '/etc/lvm/devices/system.devices':
        'VERSION=1.1.2\nIDTYPE=sys_wwid IDNAME=naa.6000c29a1b2c3d4e DEVNAME=/dev/sda3 PVID=Xy12 PART=3\n',
    };
    const k = {
      ...kernel('5.14.0-427.el9.x86_64'),
      initrd: '/boot/initramfs-5.14.0-427.el9.x86_64.img',
    };
    const ctx = conversionContext(
      vmwareSource({ name: 'rocky' }),
      debianInspection({
        distro: 'rocky',
        family: 'rhel',
        majorVersion: 9,
        minorVersion: 4,
        productName: 'Rocky Linux 9.4 (Blue Onyx)',
        packageFormat: 'rpm',
        packageManager: 'dnf',
        packages: ['bash', 'dracut', 'grub2-pc', 'kernel-core', 'open-vm-tools', 'NetworkManager'],
        kernels: [k],
        initramfsTool: 'dracut',
        bootloader: { kind: 'grub2', config: '/boot/grub2/grub.cfg' },
      }),
    );
    const plan = await planConversion(new MemGuest(files), ctx, {
      hvsource: new VmwareLinuxSource(),
      guestos: rhel,
      hvtarget: kvm,
    });
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'vmware-rhel9.txt'));
    expect(plan.actions).toContainEqual(
      expect.objectContaining({
        kind: 'remove-packages',
        manager: 'rpm',
        packages: ['open-vm-tools'],
      }),
    );
    expect(plan.actions).toContainEqual(
      expect.objectContaining({
        kind: 'write-file',
        path: '/etc/systemd/network/10-v2v-load-ens192.link',
      }),
    );
  });
});
