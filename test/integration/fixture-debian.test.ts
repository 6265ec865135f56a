/**
 * The Debian 12 VMware guest fixture (test/harness/debian-guest.ts) is what it claims to be:
 * it boots on VMware-like hardware (pvscsi + vmxnet3) with open-vm-tools and root on
 * /dev/sda1, and it does not boot on virtio hardware before conversion (its initramfs has no
 * virtio driver). The first run builds the fixture (minutes); later runs take it from the cache.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { bootDisk, STUCK_PATTERNS } from '../harness/boot.js';
import { type DebianGuest, debianGuest } from '../harness/debian-guest.js';

const exec = promisify(execFile);
let guest: DebianGuest;

beforeAll(async () => {
  guest = await debianGuest('base');
}, 3_600_000);

describe('debian 12 VMware guest fixture', () => {
  it('is exported as a VMDK + .vmx with pvscsi and vmxnet3, and as an OVA', async () => {
    const vmx = await fs.readFile(guest.vmx as string, 'utf8');
    expect(vmx).toContain('scsi0.virtualDev = "pvscsi"');
    expect(vmx).toContain('ethernet0.virtualDev = "vmxnet3"');
    expect(vmx).toContain(`ethernet0.generatedAddress = "${guest.mac}"`);
    expect(vmx).toContain(`scsi0:0.fileName = "${guest.name}.vmdk"`);
    const { stdout } = await exec('qemu-img', ['info', '--output=json', guest.vmdk as string]);
    expect(JSON.parse(stdout)).toMatchObject({ format: 'vmdk' });
    const { stdout: listing } = await exec('tar', ['-tf', guest.ova as string]);
    expect(listing.trim().split('\n')).toEqual([
      `${guest.name}.ovf`,
      `${guest.name}.mf`,
      `${guest.name}-disk1.vmdk`,
    ]);
  });

  it('boots on VMware-like hardware to the markers, with open-vm-tools and root on /dev/sda1', async () => {
    const r = await bootDisk({
      image: guest.disk,
      hardware: 'vmware',
      mac: guest.mac,
      // the markers and the getty's login prompt, in either order
      marker: /V2VLOAD-MARKERS-END[\s\S]*login: |login: [\s\S]*V2VLOAD-MARKERS-END/,
      stopOn: STUCK_PATTERNS,
    });
    expect(r.reached, r.log.slice(-3000)).toBe(true);
    expect(r.markers.vmtools).toBe('present');
    expect(r.markers.root).toBe('/dev/sda1');
    expect(r.markers.cmdline).toMatch(/(^| )root=\/dev\/sda1( |$)/);
    // ens192 as on VMware (slot 192); its DHCP lease (allow-hotplug) may come after the markers
    expect(r.markers.ifaces.map(({ name, mac }) => ({ name, mac }))).toEqual([
      { name: 'ens192', mac: guest.mac },
    ]);
    console.log(`fixture-debian: vmware boot to markers in ${r.seconds.toFixed(1)} s`);
  }, 900_000);

  it('does not reach userspace on virtio hardware: the initramfs waits for /dev/sda1', async () => {
    const r = await bootDisk({
      image: guest.disk,
      hardware: 'virtio',
      mac: guest.mac,
      marker: /\(initramfs\) /,
      stopOn: [/V2VLOAD-GUEST-UP/, /login: /],
      timeoutMs: 600_000,
    });
    expect(r.reached, r.log.slice(-3000)).toBe(true);
    expect(r.log).toContain('Gave up waiting for root file system device');
    expect(r.log).toContain('ALERT!  /dev/sda1 does not exist.  Dropping to a shell!');
    expect(r.log).not.toContain('V2VLOAD-GUEST-UP');
  }, 900_000);
});

// uuid is not booted here (only its grub and fstab differ from the base; its conversion
// boots); static-ip shows its address on ens192 before the conversion; dracut shows its
// dracut-built initramfs (VMware-era drivers only) boots on VMware hardware.
describe.each([{ variant: 'static-ip' as const }, { variant: 'dracut' as const }])(
  'debian 12 VMware guest fixture, variant $variant',
  ({ variant }) => {
    let v: DebianGuest;
    beforeAll(async () => {
      v = await debianGuest(variant);
    }, 3_600_000);

    it('boots on VMware-like hardware to the markers', async () => {
      const r = await bootDisk({
        image: v.disk,
        hardware: 'vmware',
        mac: v.mac,
        stopOn: STUCK_PATTERNS,
      });
      expect(r.reached, r.log.slice(-3000)).toBe(true);
      expect(r.markers.vmtools).toBe('present');
      expect(r.markers.root).toBe('/dev/sda1');
      const [iface] = r.markers.ifaces;
      expect(iface?.name).toBe('ens192');
      expect(r.markers.cmdline).toMatch(/(^| )root=\/dev\/sda1( |$)/);
      if (variant === 'static-ip') expect(iface?.ipv4).toEqual(['10.0.2.15/24']);
      // initramfs-tools has no dracut units to announce (the dracut build checked its image
      // with lsinitrd: VMware-era drivers, no virtio).
      if (variant !== 'dracut') expect(r.log).not.toMatch(/dracut-[a-z-]+\.service/);
      console.log(`fixture-debian: ${variant} vmware boot to markers in ${r.seconds.toFixed(1)} s`);
    }, 900_000);
  },
);

describe('debian 12 Xen PV guest fixture', () => {
  let v: DebianGuest;
  beforeAll(async () => {
    v = await debianGuest('xen-pv');
  }, 3_600_000);

  it('is a libvirt Xen PV domain (pygrub, xvda, bridge) over a raw disk', async () => {
    const xml = await fs.readFile(v.libvirtXml as string, 'utf8');
    expect(xml).toContain("<domain type='xen'>");
    expect(xml).toMatch(/<bootloader>[^<]*pygrub<\/bootloader>/);
    expect(xml).toContain(`<source file='${v.img}'/>`);
    expect(xml).toContain("<target dev='xvda' bus='xen'/>");
    expect(xml).toContain("<source bridge='xenbr0'/>");
    const { stdout } = await exec('qemu-img', ['info', '--output=json', v.img as string]);
    expect(JSON.parse(stdout)).toMatchObject({ format: 'raw' });
  });

  it('holds fstab on /dev/xvda1, console hvc0 and Xen module aliases, no open-vm-tools', async () => {
    // one appliance for the three files; a separator line between them
    const files = ['/etc/fstab', '/boot/grub/grub.cfg', '/etc/modprobe.d/xen.conf'];
    const argv = ['--ro', '-a', v.img as string, '-m', '/dev/sda1'];
    for (const [i, f] of files.entries())
      argv.push(...(i ? [':', 'echo', '@@@@', ':'] : []), 'cat', f);
    const { stdout } = await exec('guestfish', argv, { maxBuffer: 16 << 20 });
    const [fstab = '', grub = '', aliases = ''] = stdout.split('\n@@@@\n');
    expect(fstab).toMatch(/^\/dev\/xvda1\s+\/\s+ext4/m);
    expect(grub).toMatch(/linux\s+\/boot\/vmlinuz-\S+ root=\/dev\/xvda1 ro console=hvc0/);
    expect(grub).not.toContain('root=/dev/sda1');
    expect(aliases).toContain('alias scsi_hostadapter xen-blkfront');
  });
});
