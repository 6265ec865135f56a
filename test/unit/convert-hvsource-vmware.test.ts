/** HVSource VMware, Linux: which packages, files and repositories go (golden plans). */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Plan } from '../../src/convert/plan.js';
import { DebianGuestOs } from '../../src/guestos/debian.js';
import { RhelGuestOs } from '../../src/guestos/rhel.js';
import {
  commentVmwareLines,
  disableVmwareDeb822,
  disableVmwareYumRepos,
  VmwareLinuxSource,
  vmwarePackages,
} from '../../src/hvsource/vmware-linux.js';
import {
  conversionContext,
  debianInspection,
  kernel,
  MemGuest,
  planText,
  vmwareSource,
  xenPvSource,
} from '../harness/mem-guest.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/convert/hvsource-vmware');
const source = new VmwareLinuxSource();

const SOURCES_LIST = `deb http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main

# VMware's repository
deb https://packages.vmware.com/tools/releases/latest/ubuntu bookworm main
  deb-src https://packages.vmware.com/tools/releases/latest/ubuntu bookworm main
`;

const DEB822 = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://packages.vmware.com/tools/releases/latest/debian
Suites: bookworm
Components: main

Types: deb deb-src
URIs: https://packages.VMware.com/x
Suites: bookworm
Enabled: yes
`;

/** A Debian 12 guest as VMware left it: its apt sources, and open-vm-tools' files. */
function debianVmwareFiles(): Record<string, string> {
  return {
    '/etc/apt/sources.list': SOURCES_LIST,
    '/etc/apt/sources.list.d/vmware-tools.list':
      'deb https://packages.vmware.com/packages/debian bookworm main\n',
    '/etc/apt/sources.list.d/extra.list':
      'deb http://example.org/debian bookworm main\ndeb [arch=amd64] https://packages.VMware.com/x bookworm main\n',
    '/etc/apt/sources.list.d/backports.list':
      'deb http://deb.debian.org/debian bookworm-backports main\n',
    '/etc/apt/sources.list.d/debian.sources': DEB822,
    // Shipped by Debian's open-vm-tools package (not a tarball install).
    '/etc/vmware-tools/tools.conf': '[logging]\n',
    '/etc/vmware-tools/statechange.subr': '#!/bin/sh\n',
    '/usr/bin/vmware-toolbox-cmd': '\x7fELF',
  };
}

async function unconfigure(files: Record<string, string>, packages: string[], rhel = false) {
  const inspection = rhel
    ? debianInspection({
        distro: 'rhel',
        family: 'rhel',
        majorVersion: 7,
        productName: 'Red Hat Enterprise Linux Server 7.9',
        packageFormat: 'rpm',
        packageManager: 'yum',
        packages,
        kernels: [kernel('3.10.0-1160.el7.x86_64')],
        initramfsTool: 'dracut',
        bootloader: { kind: 'grub2', config: '/boot/grub2/grub.cfg' },
      })
    : debianInspection({ packages });
  const ctx = conversionContext(vmwareSource(), inspection);
  const plan = new Plan(new MemGuest(files));
  await source.unconfigureGuest(plan, rhel ? new RhelGuestOs() : new DebianGuestOs(), ctx);
  return plan;
}

describe('vmwarePackages', () => {
  it("picks VMware's tool packages and nothing else", () => {
    expect(
      vmwarePackages([
        'bash',
        'open-vm-tools',
        'open-vm-tools-desktop',
        'open-vm-tools-sdmp',
        'open-vm-toolbox',
        'open-vm-tools-dev',
        'vmware-tools-core',
        'vmware-tools-esx-nox',
        'kmod-vmware-tools-vmxnet3',
        'VMwareTools',
        'vmware-open-vm-tools-common',
        'open-vm-toolsx',
        'xvmware-tools',
        'vmware-horizon-client',
        'libvmtools0',
      ]),
    ).toEqual([
      'open-vm-tools',
      'open-vm-tools-desktop',
      'open-vm-tools-sdmp',
      'open-vm-toolbox',
      'open-vm-tools-dev',
      'vmware-tools-core',
      'vmware-tools-esx-nox',
      'kmod-vmware-tools-vmxnet3',
      'VMwareTools',
      'vmware-open-vm-tools-common',
    ]);
  });
});

describe('commentVmwareLines', () => {
  it('comments out deb and deb-src lines of vmware.com, and only those', async () => {
    const out = commentVmwareLines(SOURCES_LIST);
    expect(out).toBe(`deb http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main

# VMware's repository
# disabled by v2v-load: deb https://packages.vmware.com/tools/releases/latest/ubuntu bookworm main
# disabled by v2v-load:   deb-src https://packages.vmware.com/tools/releases/latest/ubuntu bookworm main
`);
    expect(commentVmwareLines(out)).toBe(out);
    expect(commentVmwareLines('# deb https://packages.vmware.com/x main\n')).toBe(
      '# deb https://packages.vmware.com/x main\n',
    );
  });
});

describe('disableVmwareDeb822', () => {
  it('adds or sets Enabled: no in the stanzas of vmware.com, and only those', () => {
    expect(disableVmwareDeb822(DEB822)).toBe(`Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
Enabled: no
URIs: https://packages.vmware.com/tools/releases/latest/debian
Suites: bookworm
Components: main

Types: deb deb-src
URIs: https://packages.VMware.com/x
Suites: bookworm
Enabled: no
`);
    expect(disableVmwareDeb822(disableVmwareDeb822(DEB822))).toBe(disableVmwareDeb822(DEB822));
  });
});

describe('disableVmwareYumRepos', () => {
  it('sets enabled=0 in the sections whose URLs are vmware.com, and only those', () => {
    const repo = `[base]
name=CentOS-7 - Base
baseurl=http://mirror.centos.org/centos/7/os/x86_64/
enabled=1

[vmware-tools]
name=VMware Tools
baseurl=https://packages.vmware.com/tools/esx/latest/rhel7/x86_64
enabled=1
gpgcheck=1

[vmware-mirror]
name=VMware Tools mirror
mirrorlist=https://packages.vmware.com/mirrors
`;
    expect(disableVmwareYumRepos(repo)).toBe(`[base]
name=CentOS-7 - Base
baseurl=http://mirror.centos.org/centos/7/os/x86_64/
enabled=1

[vmware-tools]
name=VMware Tools
baseurl=https://packages.vmware.com/tools/esx/latest/rhel7/x86_64
enabled=0
gpgcheck=1

[vmware-mirror]
enabled=0
name=VMware Tools mirror
mirrorlist=https://packages.vmware.com/mirrors
`);
    expect(disableVmwareYumRepos('[base]\nbaseurl=http://example.org/\n')).toBe(
      '[base]\nbaseurl=http://example.org/\n',
    );
  });
});

describe('VmwareLinuxSource', () => {
  it('applies to VMware Linux guests only', () => {
    expect(source.applies(vmwareSource(), debianInspection())).toBe(true);
    expect(source.applies(xenPvSource(), debianInspection())).toBe(false);
    expect(source.applies(vmwareSource(), debianInspection({ type: 'windows' }))).toBe(false);
  });

  it('Debian with open-vm-tools packages: dpkg --purge of the installed ones, VMware repos off (golden)', async () => {
    const plan = await unconfigure(debianVmwareFiles(), [
      'bash',
      'libvmtools0',
      'open-vm-tools',
      'open-vm-tools-desktop',
      'openssh-server',
      'zerofree',
    ]);
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'debian-packages.txt'));
    expect(plan.actions.filter((a) => a.kind === 'remove-packages')).toEqual([
      expect.objectContaining({
        manager: 'dpkg',
        packages: ['open-vm-tools', 'open-vm-tools-desktop'],
      }),
    ]);
    // The package owns /etc/vmware-tools: no tarball clean-up, no uninstaller.
    expect(
      plan.actions.some((a) => a.kind === 'remove-file' && a.path.startsWith('/etc/vmware-tools')),
    ).toBe(false);
    expect(plan.actions.some((a) => a.kind === 'run')).toBe(false);
    expect(await plan.read('/etc/apt/sources.list.d/backports.list')).toBe(
      'deb http://deb.debian.org/debian bookworm-backports main\n',
    );
    expect(await plan.exists('/etc/apt/sources.list.d/vmware-tools.list')).toBe(false);
  });

  it('tarball install with its uninstaller: the uninstaller runs (golden)', async () => {
    const plan = await unconfigure(
      {
        '/usr/bin/vmware-uninstall-tools.pl': '#!/usr/bin/perl\n',
        '/etc/vmware-tools/locations': 'answer BINDIR /usr/bin\n',
        '/etc/init.d/vmware-tools': '#!/bin/sh\n',
      },
      ['bash', 'perl'],
    );
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'tarball-uninstaller.txt'));
    expect(plan.actions).toEqual([
      expect.objectContaining({ kind: 'run', argv: ['/usr/bin/vmware-uninstall-tools.pl'] }),
    ]);
  });

  it('tarball install without its uninstaller: its files and init scripts go (golden)', async () => {
    const plan = await unconfigure(
      {
        '/etc/vmware-tools/locations': 'answer BINDIR /usr/bin\n',
        '/etc/vmware-tools/tools.conf': '',
        '/usr/lib/vmware-tools/bin64/vmware-user-loader': '',
        '/etc/init.d/vmware-tools': '#!/bin/sh\n',
        '/etc/systemd/system/multi-user.target.wants/vmware-tools.service': '',
        '/usr/bin/vmware-toolbox-cmd': '',
        '/usr/bin/vmware-user': '',
      },
      ['bash'],
    );
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'tarball-files.txt'));
    expect(
      plan.actions.map((a) =>
        a.kind === 'remove-file' ? `${a.path}${a.recursive ? ' -r' : ''}` : a.kind,
      ),
    ).toEqual([
      '/etc/vmware-tools -r',
      '/usr/lib/vmware-tools -r',
      '/etc/init.d/vmware-tools -r',
      '/etc/systemd/system/multi-user.target.wants/vmware-tools.service -r',
      '/usr/bin/vmware-toolbox-cmd -r',
      '/usr/bin/vmware-user -r',
    ]);
  });

  it('RHEL with the VMwareTools package: rpm -e, its uninstaller left to rpm, yum repo removed (golden)', async () => {
    const plan = await unconfigure(
      {
        '/usr/bin/vmware-uninstall-tools.pl': '#!/usr/bin/perl\n',
        '/etc/vmware-tools/locations': '',
        '/etc/yum.repos.d/vmware-tools.repo':
          '[vmware-tools]\nbaseurl=https://packages.vmware.com/tools\n',
        '/etc/yum.repos.d/CentOS-Base.repo': '[base]\n',
        '/etc/yum.repos.d/local.repo':
          '[local]\nbaseurl=file:///srv/repo\n\n[tools]\nbaseurl=https://packages.vmware.com/tools/esx/6.0/rhel7/x86_64\n',
      },
      ['bash', 'VMwareTools', 'vmware-tools-esx-kmods'],
      true,
    );
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'rhel-vmwaretools-rpm.txt'));
    expect(plan.actions.map((a) => a.kind)).toEqual([
      'remove-packages',
      'write-file',
      'remove-file',
    ]);
    expect(await plan.read('/etc/yum.repos.d/local.repo')).toBe(
      '[local]\nbaseurl=file:///srv/repo\n\n[tools]\nenabled=0\nbaseurl=https://packages.vmware.com/tools/esx/6.0/rhel7/x86_64\n',
    );
    expect(plan.actions[0]).toMatchObject({
      manager: 'rpm',
      packages: ['VMwareTools', 'vmware-tools-esx-kmods'],
    });
  });

  it('a guest without VMware tools or repositories: nothing planned', async () => {
    const plan = await unconfigure(
      { '/etc/apt/sources.list': 'deb http://deb.debian.org/debian bookworm main\n' },
      ['bash'],
    );
    expect(plan.actions).toEqual([]);
  });
});
