/** HVTarget KVM: what it refuses before anything is written, and the domain XML (golden). */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConversionError } from '../../src/convert/errors.js';
import type { GuestInspection } from '../../src/convert/inspection.js';
import { Plan } from '../../src/convert/plan.js';
import { parseNetworkMapping } from '../../src/convert/target.js';
import { DebianGuestOs } from '../../src/guestos/debian.js';
import { buildTargetDomainXml, cpuTopology } from '../../src/hvtarget/domain.js';
import { KvmTarget } from '../../src/hvtarget/kvm.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import {
  type ContextOptions,
  conversionContext,
  debianInspection,
  kernel,
  MemGuest,
  sourceDisk,
  vmwareSource,
  xenPvSource,
} from '../harness/mem-guest.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/convert/domain');
const kvm = new KvmTarget();

function refusal(insp: Partial<GuestInspection>, o: ContextOptions = {}): ConversionError {
  try {
    kvm.canConfigure(conversionContext(vmwareSource(), debianInspection(insp), o));
  } catch (e) {
    if (e instanceof ConversionError) return e;
    throw e;
  }
  throw new Error('canConfigure accepted the guest');
}

describe('canConfigure', () => {
  it('accepts a Linux guest with a virtio kernel and an initramfs tool', () => {
    expect(() =>
      kvm.canConfigure(conversionContext(vmwareSource(), debianInspection())),
    ).not.toThrow();
  });

  it('refuses a guest without kernels', () => {
    const e = refusal({ kernels: [] });
    expect(e.message).toBe('web: no kernel found in the guest (/lib/modules, /boot)');
    expect(e.hint).toBe('check the guest disks; the root file system must hold its kernels');
  });

  it('refuses a guest whose kernels lack virtio, naming them, with --with and --no-virtio hints', () => {
    const e = refusal({
      kernels: [kernel('2.6.18-8.el5', false), kernel('2.6.18-8.el5xen', true, true)],
    });
    expect(e.message).toBe(
      'web: no kernel in the guest has virtio drivers (2.6.18-8.el5, 2.6.18-8.el5xen): it would not find its disk on KVM',
    );
    expect(e.hint).toContain('--with kernel=PATH');
    expect(e.hint).toContain('--no-virtio');
  });

  it('a kernel with virtio but no virtio_net is not enough', () => {
    const k = kernel('4.19.0-27-amd64');
    k.virtio.net = false;
    expect(refusal({ kernels: [k] }).message).toContain(
      'no kernel in the guest has virtio drivers (4.19.0-27-amd64)',
    );
  });

  it('accepts a guest without virtio kernels given --with kernel=, or with --no-virtio', () => {
    const insp = debianInspection({
      kernels: [kernel('2.6.18-8.el5', false)],
      packageFormat: 'rpm',
    });
    expect(() =>
      kvm.canConfigure(
        conversionContext(vmwareSource(), insp, { withFiles: { kernel: '/srv/k.rpm' } }),
      ),
    ).not.toThrow();
    expect(() =>
      kvm.canConfigure(conversionContext(vmwareSource(), insp, { virtio: false })),
    ).not.toThrow();
  });

  it('--with kernel=: refuses a package the guest cannot install, before anything is written', () => {
    const e = refusal(
      { kernels: [kernel('2.6.18-8.el5', false)] },
      { withFiles: { kernel: '/srv/k.rpm' } },
    );
    expect(e.message).toBe(
      'web: --with kernel=/srv/k.rpm: the guest installs deb packages, not rpm',
    );
    expect(e.hint).toContain('(.deb)');
    expect(refusal({}, { withFiles: { kernel: '/srv/kernel.tar' } }).message).toBe(
      'web: --with kernel=/srv/kernel.tar: the guest installs deb packages (the file name must end in .deb or .rpm)',
    );
  });

  it('--with kernel=: once installed, still no kernel with virtio is a clear error', () => {
    const ctx = conversionContext(
      vmwareSource(),
      debianInspection({
        kernels: [kernel('6.1.0-50-amd64', false), kernel('6.1.0-57-amd64', false)],
      }),
      { withFiles: { kernel: '/srv/linux-image-6.1.0-57-amd64.deb' } },
    );
    expect(() => kvm.canConfigure(ctx)).not.toThrow();
    expect(() => kvm.canConfigure(ctx, true)).toThrow(
      'web: --with kernel=/srv/linux-image-6.1.0-57-amd64.deb was installed, but still no kernel in the guest has virtio drivers (6.1.0-50-amd64, 6.1.0-57-amd64)',
    );
  });

  it('refuses virtio without an initramfs tool; --no-virtio does not need one', () => {
    const e = refusal({ initramfsTool: 'none' });
    expect(e.message).toBe('web: no initramfs tool (initramfs-tools, dracut) in the guest');
    expect(e.hint).toContain('--no-virtio');
    expect(() =>
      kvm.canConfigure(
        conversionContext(vmwareSource(), debianInspection({ initramfsTool: 'none' }), {
          virtio: false,
        }),
      ),
    ).not.toThrow();
  });

  it('refuses a guest that is neither Linux nor Windows by its product name', () => {
    expect(refusal({ type: 'unknown', productName: 'FreeBSD 14' }).message).toBe(
      'web: FreeBSD 14 guests are not converted yet (Linux and Windows only)',
    );
  });

  it('refuses a Windows guest whose system root and hives inspection did not find', () => {
    expect(refusal({ type: 'windows', productName: 'Windows Server 2019' }).message).toBe(
      'web: inspection found Windows but not its system root and registry hives',
    );
  });
});

describe('planPrerequisites', () => {
  it('--with kernel=PATH: uploads the package, installs it with the guest tool, removes it', async () => {
    const ctx = conversionContext(vmwareSource(), debianInspection(), {
      withFiles: { kernel: '/srv/pkgs/linux-image-6.1.0-28-amd64.deb' },
    });
    const plan = new Plan(new MemGuest());
    await kvm.planPrerequisites(plan, new DebianGuestOs(), ctx);
    expect(plan.actions).toEqual([
      expect.objectContaining({
        kind: 'upload-file',
        from: '/srv/pkgs/linux-image-6.1.0-28-amd64.deb',
        to: '/var/tmp/v2v-load-kernel-package',
      }),
      expect.objectContaining({
        kind: 'run',
        argv: ['dpkg', '-i', '/var/tmp/v2v-load-kernel-package'],
      }),
      expect.objectContaining({
        kind: 'run',
        argv: ['rm', '-f', '/var/tmp/v2v-load-kernel-package'],
      }),
    ]);
    const rpm = conversionContext(vmwareSource(), debianInspection({ packageFormat: 'rpm' }), {
      withFiles: { kernel: '/srv/k.rpm' },
    });
    const plan2 = new Plan(new MemGuest());
    await kvm.planPrerequisites(plan2, new DebianGuestOs(), rpm);
    expect(plan2.actions[1]).toMatchObject({
      argv: ['rpm', '-i', '/var/tmp/v2v-load-kernel-package'],
    });
  });

  it('nothing without --with kernel=; configureGuest itself installs nothing', async () => {
    const plan = new Plan(new MemGuest());
    await kvm.planPrerequisites(
      plan,
      new DebianGuestOs(),
      conversionContext(vmwareSource(), debianInspection()),
    );
    expect(plan.actions).toEqual([]);
    const ctx = conversionContext(vmwareSource(), debianInspection(), {
      withFiles: { kernel: '/srv/pkgs/linux-image-6.1.0-28-amd64.deb' },
    });
    const plan2 = new Plan(new MemGuest());
    await kvm.configureGuest(plan2, new DebianGuestOs(), ctx);
    expect(plan2.actions.some((a) => a.kind === 'upload-file')).toBe(false);
  });
});

describe('domain XML (golden)', () => {
  const xml = (source: SourceGuest, o: ContextOptions = {}, insp: Partial<GuestInspection> = {}) =>
    buildTargetDomainXml(
      kvm.configureMetadata(conversionContext(source, debianInspection(insp), o)),
    );
  const twoDisks = vmwareSource({
    disks: [
      sourceDisk({ slot: 'scsi0:0', path: '/srv/vm/web/web.vmdk' }),
      sourceDisk({ slot: 'scsi0:1', unit: 1, path: '/srv/vm/web/web_1.vmdk' }),
    ],
  });

  it('virtio, q35, BIOS, 2 vCPUs, kvm', async () => {
    const out = xml(twoDisks);
    await expect(out).toMatchFileSnapshot(path.join(GOLDEN, 'virtio-q35-bios.xml'));
    expect(out).toContain('<type arch="x86_64" machine="q35">hvm</type>');
    expect(out).toContain('<target dev="vdb" bus="virtio"/>');
    expect(out).toContain('<mac address="00:50:56:aa:bb:01"/>');
    expect(out).toContain('<topology sockets="1" dies="1" cores="2" threads="1"/>');
    expect(out).not.toContain('<loader');
  });

  it('--no-virtio: pc machine, IDE hda/hdb, e1000, vga, no balloon or rng; qemu domain type', async () => {
    const out = xml(twoDisks, { virtio: false, domainType: 'qemu', outputFormat: 'raw' });
    await expect(out).toMatchFileSnapshot(path.join(GOLDEN, 'no-virtio-pc-ide.xml'));
    expect(out).toContain('<domain type="qemu">');
    expect(out).toContain('machine="pc"');
    expect(out).toContain('<target dev="hdb" bus="ide"/>');
    expect(out).toContain('<model type="e1000"/>');
    expect(out).toContain('<memballoon model="none"/>');
    expect(out).not.toContain('virtio');
    expect(out).not.toContain('host-model');
  });

  it('UEFI: the OVMF loader and a variables template', async () => {
    const out = xml(vmwareSource({ firmware: 'uefi' }));
    await expect(out).toMatchFileSnapshot(path.join(GOLDEN, 'uefi.xml'));
    expect(out).toContain(
      '<loader readonly="yes" type="pflash">/usr/share/OVMF/OVMF_CODE.fd</loader>',
    );
    expect(out).toContain('<nvram template="/usr/share/OVMF/OVMF_VARS.fd"/>');
  });

  it('6 vCPUs with a source topology of 3 cores per socket: 2 sockets × 3 cores', async () => {
    const out = xml(vmwareSource({ vcpus: 6, cpuTopology: { sockets: 1, cores: 3, threads: 1 } }));
    await expect(out).toMatchFileSnapshot(path.join(GOLDEN, 'vcpus-6-cores-3.xml'));
    expect(out).toContain('<vcpu placement="static">6</vcpu>');
    expect(out).toContain('<topology sockets="2" dies="1" cores="3" threads="1"/>');
  });

  it('a Xen PV guest on a bridge by --bridge xenbr0:br0, named by --name, no UUID', async () => {
    const out = xml(
      xenPvSource({ uuid: undefined }),
      { networks: [parseNetworkMapping('xenbr0:br0', 'bridge')], name: 'web-kvm' },
      { kernels: [{ ...kernel('6.1.0-28-amd64'), virtio: { ...kernel('x').virtio, rng: false } }] },
    );
    await expect(out).toMatchFileSnapshot(path.join(GOLDEN, 'xen-bridge.xml'));
    expect(out).toContain('<interface type="bridge">');
    expect(out).toContain('<source bridge="br0"/>');
    expect(out).toContain('<source file="/srv/out/web-kvm-sda.qcow2"/>');
    expect(out).toContain('<v2v:source hypervisor="xen-pv">/srv/xen/xenweb.xml</v2v:source>');
    expect(out).not.toContain('<uuid>');
    expect(out).not.toContain('<rng');
  });

  it('escapes names and paths (XML built from objects)', () => {
    const out = xml(
      vmwareSource({ name: 'a&b<c>', origin: { kind: 'vmx', source: "/srv/'x'&<y>.vmx" } }),
      { outputDir: '/srv/o&ut' },
    );
    expect(out).toContain('<name>a&amp;b&lt;c&gt;</name>');
    expect(out).not.toContain('<c>');
    expect(out).not.toContain('<y>');
  });
});

describe('cpuTopology', () => {
  const hints = [
    undefined,
    { sockets: 1, cores: 1, threads: 1 },
    { sockets: 2, cores: 3, threads: 1 },
    { sockets: 1, cores: 3, threads: 1 },
    { sockets: 2, cores: 2, threads: 2 },
    { sockets: 1, cores: 4, threads: 2 },
    { sockets: 0, cores: 0, threads: 0 },
    { sockets: 1, cores: 0, threads: 1 },
    { sockets: -1, cores: -6, threads: 1 },
    { sockets: 2, cores: 1.5, threads: 1 },
    { sockets: 1, cores: Number.NaN, threads: 1 },
    { sockets: 64, cores: 64, threads: 64 },
    { sockets: 1, cores: 7, threads: 1 },
  ];

  it('is always whole numbers ≥ 1 whose product is the vCPU count (1..64, odd hints)', () => {
    for (let vcpus = 1; vcpus <= 64; vcpus++) {
      for (const hint of hints) {
        const t = cpuTopology(vcpus, hint);
        for (const n of [t.sockets, t.cores, t.threads]) {
          expect(
            Number.isInteger(n) && n >= 1,
            `${vcpus} ${JSON.stringify(hint)} → ${JSON.stringify(t)}`,
          ).toBe(true);
        }
        expect(t.sockets * t.cores * t.threads).toBe(vcpus);
      }
    }
  });

  it.each([
    [6, { sockets: 2, cores: 3, threads: 1 }, { sockets: 2, cores: 3, threads: 1 }],
    [6, { sockets: 1, cores: 3, threads: 1 }, { sockets: 2, cores: 3, threads: 1 }],
    [8, { sockets: 1, cores: 2, threads: 2 }, { sockets: 2, cores: 2, threads: 2 }],
    [6, { sockets: 1, cores: 2, threads: 2 }, { sockets: 3, cores: 2, threads: 1 }],
    [5, { sockets: 1, cores: 2, threads: 1 }, { sockets: 1, cores: 5, threads: 1 }],
    [4, undefined, { sockets: 1, cores: 4, threads: 1 }],
  ])('%i vCPUs with %j → %j', (vcpus, hint, want) => {
    expect(cpuTopology(vcpus, hint)).toEqual(want);
  });
});
