/** GuestOS for the Debian family (Debian, Ubuntu): dpkg, initramfs-tools or dracut, grub2. */
import { LinuxGuestOs } from './linux.js';

export class DebianGuestOs extends LinuxGuestOs {
  constructor() {
    super({
      name: 'debian',
      families: ['debian'],
      packageTool: 'dpkg',
      grubMkconfig: (config) => ['grub-mkconfig', '-o', config],
      initrdPath: (k) => `/boot/initrd.img-${k.version}`,
    });
  }
}
