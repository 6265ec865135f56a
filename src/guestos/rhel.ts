/** GuestOS for the RHEL family (RHEL, CentOS, Rocky, Alma, Fedora, Oracle): rpm, dracut, grub2. */
import { LinuxGuestOs } from './linux.js';

export class RhelGuestOs extends LinuxGuestOs {
  constructor() {
    super({
      name: 'rhel',
      families: ['rhel'],
      packageTool: 'rpm',
      grubMkconfig: (config) => ['grub2-mkconfig', '-o', config],
      initrdPath: (k) => `/boot/initramfs-${k.version}.img`,
    });
  }
}
