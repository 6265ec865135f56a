/**
 * HVSource VMware, Linux guests: VMware Tools go (open-vm-tools and the vmware-tools packages
 * with the guest's package tool; a tarball install with its own uninstaller, else its files),
 * and VMware's package repositories are disabled. The metadata side (pvscsi, lsilogic,
 * vmxnet3, e1000 ...) needs no undoing: the target layout maps every source bus and model.
 */
import type { GuestInspection } from '../convert/inspection.js';
import type { ConversionContext, GuestOs, HvSource } from '../convert/modules.js';
import type { Plan } from '../convert/plan.js';
import type { SourceGuest } from '../metadata/model.js';

const BY = 'hvsource/vmware-linux';

/** Package names of VMware's guest tools, exact or by prefix. */
export function vmwarePackages(installed: readonly string[]): string[] {
  return installed.filter(
    (p) =>
      /^open-vm-tools(-.+)?$/.test(p) ||
      /^open-vm-toolbox$/.test(p) ||
      /^vmware-tools(-.+)?$/.test(p) ||
      /^kmod-vmware-tools/.test(p) ||
      /^VMwareTools$/.test(p) ||
      /^vmware-open-vm-tools/.test(p),
  );
}

/** Where a tarball (vmware-install.pl) install of VMware Tools leaves things. */
const TARBALL_UNINSTALLER = '/usr/bin/vmware-uninstall-tools.pl';
const TARBALL_FILES = [
  '/etc/vmware-tools',
  '/usr/lib/vmware-tools',
  '/etc/init.d/vmware-tools',
  '/etc/rc.d/init.d/vmware-tools',
  '/etc/systemd/system/vmware-tools.service',
  '/etc/systemd/system/multi-user.target.wants/vmware-tools.service',
  '/usr/bin/vmware-toolbox-cmd',
  '/usr/bin/vmware-user',
  '/usr/sbin/vmware-guestd',
];

export class VmwareLinuxSource implements HvSource {
  readonly name = 'vmware-linux';

  applies(source: SourceGuest, inspection: GuestInspection): boolean {
    return source.hypervisor === 'vmware' && inspection.type === 'linux';
  }

  async unconfigureGuest(plan: Plan, os: GuestOs, ctx: ConversionContext): Promise<void> {
    const packages = vmwarePackages(ctx.inspection.packages);
    await os.removeApplications(plan, packages, ctx);
    // The uninstaller comes from a tarball install, or from the old VMwareTools/vmware-tools
    // packages (which their removal above takes away). Debian's open-vm-tools ships
    // /etc/vmware-tools and /usr/bin/vmware-toolbox-cmd too: those files mark a tarball install
    // only when no VMware package is installed.
    const toolsPackage = packages.some((p) => p.startsWith('vmware-tools') || p === 'VMwareTools');
    if (!toolsPackage && (await plan.exists(TARBALL_UNINSTALLER))) {
      plan.run([TARBALL_UNINSTALLER], BY, 'uninstall VMware Tools installed from the tarball');
    } else if (!packages.length && (await plan.exists('/etc/vmware-tools'))) {
      for (const f of TARBALL_FILES) {
        await plan.remove(f, BY, 'VMware Tools tarball install without its uninstaller', true);
      }
    }
    await this.disableRepositories(plan);
  }

  private async disableRepositories(plan: Plan): Promise<void> {
    for (const n of await plan.ls('/etc/apt/sources.list.d')) {
      const f = `/etc/apt/sources.list.d/${n}`;
      if (/vmware/i.test(n)) await plan.remove(f, BY, 'VMware package repository');
      else if (n.endsWith('.sources')) {
        await plan.edit(f, disableVmwareDeb822, BY, 'VMware package repository');
      } else await plan.edit(f, commentVmwareLines, BY, 'VMware package repository');
    }
    await plan.edit('/etc/apt/sources.list', commentVmwareLines, BY, 'VMware package repository');
    for (const n of await plan.ls('/etc/yum.repos.d')) {
      const f = `/etc/yum.repos.d/${n}`;
      if (/vmware/i.test(n)) await plan.remove(f, BY, 'VMware package repository');
      else if (n.endsWith('.repo')) {
        await plan.edit(f, disableVmwareYumRepos, BY, 'VMware package repository');
      }
    }
  }
}

const VMWARE_URL = /vmware\.com/i;

/** deb822 `.sources` stanzas whose URIs point at vmware.com get `Enabled: no`. */
export function disableVmwareDeb822(text: string): string {
  return text
    .split(/(\n[ \t]*\n)/)
    .map((stanza) => {
      if (!/^\s*URIs:.*vmware\.com/im.test(stanza)) return stanza;
      if (/^\s*Enabled:/im.test(stanza)) return stanza.replace(/^(\s*Enabled:).*$/im, '$1 no');
      return stanza.replace(/^(\s*URIs:.*)$/im, 'Enabled: no\n$1');
    })
    .join('');
}

/** yum/dnf `.repo` sections whose baseurl, mirrorlist or metalink is vmware.com: `enabled=0`. */
export function disableVmwareYumRepos(text: string): string {
  return text
    .split(/(?=^\[)/m)
    .map((section) => {
      const urls = section.match(/^\s*(baseurl|mirrorlist|metalink)\s*=.*$/gim) ?? [];
      if (!section.startsWith('[') || !urls.some((u) => VMWARE_URL.test(u))) return section;
      if (/^\s*enabled\s*=/im.test(section)) {
        return section.replace(/^(\s*enabled\s*=).*$/gim, (_l, key: string) => `${key}0`);
      }
      return section.replace(/^(\[[^\]\n]*\].*)$/m, '$1\nenabled=0');
    })
    .join('');
}

/** Comments out apt source lines that point at packages.vmware.com. */
export function commentVmwareLines(text: string): string {
  return text
    .split('\n')
    .map((l) => (/^\s*deb(-src)?\s.*vmware\.com/i.test(l) ? `# disabled by v2v-load: ${l}` : l))
    .join('\n');
}
