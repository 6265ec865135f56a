/**
 * Windows conversion plans, without an appliance: the guests of
 * test/fixtures/windows-guest/guests.json in memory (files + registry), the fake virtio-win
 * tree on the local disk. Golden files: the plan as --dry-run prints it and the domain XML.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConversionError } from '../../src/convert/errors.js';
import type { ConversionContext } from '../../src/convert/modules.js';
import { Converter, type ConvertRequest } from '../../src/convert/pipeline.js';
import { applyPlan, describeAction, Plan } from '../../src/convert/plan.js';
import {
  decodeRegValue,
  dword,
  encodeRegValue,
  expandSz,
  multiSz,
  type RegValue,
  sz,
} from '../../src/convert/registry.js';
import { UsageError } from '../../src/errors.js';
import type { Guest } from '../../src/guestfs/guest.js';
import { uninstallCommand, WindowsGuestOs } from '../../src/guestos/windows.js';
import { IDE_CRITICAL_DEVICES } from '../../src/guestos/windows-ide.js';
import { VmwareWindowsSource } from '../../src/hvsource/vmware-windows.js';
import { buildTargetDomainXml } from '../../src/hvtarget/domain.js';
import { KvmTarget } from '../../src/hvtarget/kvm.js';
import { osDirs, parseXorrisoFind, pickDrivers } from '../../src/hvtarget/virtio-win.js';
import { LocalNode } from '../../src/node/local-node.js';
import { CleanupStack } from '../../src/run/cleanup.js';
import { type ContextOptions, conversionContext, planText } from '../harness/mem-guest.js';
import { WINDOWS_GUESTS, type WindowsGuestName } from '../harness/windows-guest.js';
import {
  guestSpecs,
  MemRegistry,
  MemWindowsGuest,
  memWindowsGuest,
} from '../harness/windows-mem-guest.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/windows');
const node = new LocalNode();
const cleanup = new CleanupStack();
let tmp: string;
let virtioWin: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'v2v-load-windows-unit-'));
  // The fake virtio-win tree of the fixtures, written as build.py writes it.
  virtioWin = path.join(tmp, 'virtio-win');
  for (const [driver, dirs] of Object.entries(guestSpecs().virtioWin)) {
    for (const d of dirs) {
      await fs.mkdir(path.join(virtioWin, driver, d), { recursive: true });
      for (const ext of ['sys', 'inf', 'cat', 'pdb']) {
        const base = driver.toLowerCase();
        await fs.writeFile(
          path.join(virtioWin, driver, d, `${base}.${ext}`),
          `placeholder ${base}.${ext} for ${d}\n`,
        );
      }
    }
  }
});

afterAll(async () => {
  await cleanup.run();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** The options each guest is converted with (as in the integration tests). */
function options(name: WindowsGuestName): ContextOptions & {
  virtioWin?: string;
  removeTools?: boolean;
} {
  switch (name) {
    case 'winxp':
      return { virtioWin, removeTools: true };
    case 'win2003':
      return {};
    case 'win7':
      return { virtioWin, removeTools: true };
    case 'win2019':
      return { virtioWin, removeTools: true };
  }
}

function context(
  name: WindowsGuestName,
  o: ReturnType<typeof options> = options(name),
): { ctx: ConversionContext; guest: MemWindowsGuest } {
  const { guest, inspection, source } = memWindowsGuest(name);
  const ctx = conversionContext(source, inspection, { ...o, domainType: o.domainType ?? 'kvm' });
  ctx.options.virtioWin = o.virtioWin;
  ctx.options.removeVmwareToolsFirstboot = o.removeTools ?? false;
  ctx.io = { node, cleanup };
  return { ctx, guest };
}

async function plan(name: WindowsGuestName, o = options(name)) {
  const { ctx, guest } = context(name, o);
  const kvm = new KvmTarget();
  const win = new WindowsGuestOs();
  kvm.canConfigure(ctx);
  const p = new Plan(guest);
  await new VmwareWindowsSource().unconfigureGuest(p, win, ctx);
  await kvm.configureGuest(p, win, ctx);
  return { plan: p, ctx, domain: kvm.configureMetadata(ctx) };
}

/** The plan text with the temporary tree's path made stable. */
function stable(text: string): string {
  return text.replaceAll(tmp, '/TMP');
}

describe.each(WINDOWS_GUESTS)('%s: the plan', (name) => {
  it('matches the golden plan (registry changes, driver copies, notes, warnings)', async () => {
    const { plan: p } = await plan(name);
    const notes = p.notes.map((n) => `note: ${n}`).join('\n');
    await expect(stable(`${planText(p)}${notes}\n`)).toMatchFileSnapshot(
      path.join(GOLDEN, `plan-${name}.txt`),
    );
  });

  it('matches the golden domain XML', async () => {
    const { domain } = await plan(name);
    await expect(buildTargetDomainXml(domain)).toMatchFileSnapshot(
      path.join(GOLDEN, `domain-${name}.xml`),
    );
  });

  it('edits only the active control set', async () => {
    const { plan: p, ctx } = await plan(name);
    const cs = `ControlSet00${memWindowsGuest(name).inspection && (guestSpecs().guests[name].current ?? 1)}`;
    const system = ctx.inspection.windows?.systemHive;
    for (const a of p.actions) {
      if (a.kind !== 'registry' || a.hivePath !== system || a.key[0] === 'DriverDatabase') continue;
      expect(a.key[0]).toBe(cs);
    }
  });
});

describe('the active control set', () => {
  it('Windows 7 with Select\\Current = 2: ControlSet002 changes, ControlSet001 does not', async () => {
    const { plan: p } = await plan('win7');
    const keys = p.actions.flatMap((a) => (a.kind === 'registry' ? [a.key.join('\\')] : []));
    expect(keys).toContain('ControlSet002\\Services\\VMTools');
    expect(keys.filter((k) => k.startsWith('ControlSet001'))).toEqual([]);
  });

  it('refuses a SYSTEM hive without Select\\Current, naming the hive', async () => {
    const { ctx } = context('win2019');
    const reg = new MemRegistry().set(
      ctx.inspection.windows?.systemHive as string,
      'ControlSet001',
    );
    const p = new Plan(new MemWindowsGuest({}, reg));
    const e = await new WindowsGuestOs().registry(p, ctx).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConversionError);
    expect((e as Error).message).toBe(
      'win2019: HKLM\\SYSTEM\\Select\\Current in /Windows/System32/config/SYSTEM is missing or not a control set number',
    );
  });

  it('refuses a Select\\Current naming a control set the hive lacks', async () => {
    const { ctx } = context('win2019');
    const hive = ctx.inspection.windows?.systemHive as string;
    const reg = new MemRegistry()
      .set(hive, 'Select', { Current: dword(3) })
      .set(hive, 'ControlSet001');
    const e = await new WindowsGuestOs()
      .registry(new Plan(new MemWindowsGuest({}, reg)), ctx)
      .catch((x: unknown) => x);
    expect((e as Error).message).toBe(
      'win2019: HKLM\\SYSTEM\\Select\\Current names ControlSet003, which /Windows/System32/config/SYSTEM does not have',
    );
  });

  it('a hive that cannot be read is a clear error with a hint', async () => {
    const { ctx } = context('win7');
    const guest = new MemWindowsGuest({}, new MemRegistry());
    guest.regKeys = async () => {
      throw new Error(
        'v2v_reg_keys: hivex_open: /Windows/System32/config/SYSTEM: Invalid argument',
      );
    };
    const e = (await new WindowsGuestOs()
      .registry(new Plan(guest), ctx)
      .catch((x: unknown) => x)) as ConversionError;
    expect(e.message).toBe(
      "win7: the guest's SYSTEM hive /Windows/System32/config/SYSTEM cannot be read: v2v_reg_keys: hivex_open: /Windows/System32/config/SYSTEM: Invalid argument",
    );
    expect(e.hint).toContain('damaged');
  });
});

describe('VMware services', () => {
  it('reports which were found and changed, already disabled, and absent', async () => {
    const { plan: p } = await plan('win7');
    expect(p.notes).toEqual([
      'VMware services in ControlSet002: disabled (Start 4) vmci (was 0), VMTools (was 2), vm3dmp (was 3), vmhgfs (was 1), vmmemctl (was 2), vmrawdsk (was 1), vmusbmouse (was 3), vsock (was 3), VGAuthService (was 2); already disabled vmvss; not present 6',
    ]);
  });

  it('a second plan over the first changes nothing more (idempotent)', async () => {
    const { ctx, guest } = context('win2019');
    const win = new WindowsGuestOs();
    const p = new Plan(guest);
    await new VmwareWindowsSource().unconfigureGuest(p, win, ctx);
    const n = p.actions.length;
    const again = await win.disableServices(p, ['vmci', 'VMTools'], ctx, 'test', 'again');
    expect(p.actions.length).toBe(n);
    expect(again.unchanged).toEqual(['vmci', 'VMTools']);
  });
});

describe('drivers', () => {
  it('no --virtio-win: IDE and e1000, with a warning that says how to get virtio', async () => {
    const { plan: p, domain } = await plan('win7', {});
    expect(p.warnings).toEqual([
      'no --virtio-win: Windows 7 Professional (6.1 x86_64) gets IDE disks and an e1000 NIC (slower); give --virtio-win DIR_OR_ISO (the virtio-win drivers) for virtio',
    ]);
    expect(domain.disks.map((d) => `${d.bus}:${d.dev}`)).toEqual(['ide:hda']);
    expect(domain.nics.map((n) => n.model)).toEqual(['e1000']);
    expect(domain.machine).toBe('pc');
  });

  it('--no-virtio: IDE without a warning', async () => {
    const { plan: p, domain } = await plan('win2019', { virtio: false, virtioWin });
    expect(p.warnings).toEqual([]);
    expect(p.actions.some((a) => a.kind === 'upload-file')).toBe(false);
    expect(domain.disks[0]?.bus).toBe('ide');
  });

  it('a version virtio-win has no drivers for falls back to IDE + e1000 with warnings', async () => {
    const { plan: p, domain } = await plan('winxp');
    expect(p.warnings).toEqual([
      `${virtioWin} has no viostor driver for Microsoft Windows XP (5.1 i386) (looked in viostor/xp/x86): the guest gets IDE disks`,
      `${virtioWin} has no netkvm driver for Microsoft Windows XP (5.1 i386) (looked in netkvm/xp/x86): the guest gets e1000 NICs`,
    ]);
    expect(domain.disks[0]?.bus).toBe('ide');
    // MergeIDE's whole CriticalDeviceDatabase set, in the active control set
    const cdd = p.actions.flatMap((a) =>
      a.kind === 'registry' && a.key[2] === 'CriticalDeviceDatabase' ? [a.key[3]] : [],
    );
    expect(cdd).toEqual(IDE_CRITICAL_DEVICES.map((d) => d.id));
  });

  it('Windows 6.x on IDE: the IDE services start at boot, no CriticalDeviceDatabase', async () => {
    const { plan: p } = await plan('win7', {});
    const reg = p.actions.filter((a) => a.kind === 'registry');
    expect(reg.some((a) => a.key.includes('CriticalDeviceDatabase'))).toBe(false);
    expect(
      reg
        .filter((a) => ['atapi', 'intelide', 'pciide'].includes(a.key[2]?.toLowerCase() ?? ''))
        .map((a) => `${a.key[2]}: ${a.values.map((v) => v.name).join(',')}`),
    ).toEqual(['intelide: Start', 'pciide: Start']);
  });

  it('Windows 8+ registers viostor in the DriverDatabase under the first free oemN.inf', async () => {
    const { plan: p } = await plan('win2019');
    const infs = p.actions.flatMap((a) =>
      a.kind === 'registry' && a.key[1] === 'DriverInfFiles' ? [a.key[2]] : [],
    );
    expect(infs).toEqual(['oem2.inf', 'oem4.inf']);
  });

  it('copies the drivers for the version and architecture, not another folder', async () => {
    const { plan: p } = await plan('win2019');
    const uploads = p.actions.flatMap((a) =>
      a.kind === 'upload-file' ? [`${stable(a.from)} -> ${a.to}`] : [],
    );
    expect(uploads).toContain(
      '/TMP/virtio-win/viostor/2k19/amd64/viostor.sys -> /Windows/System32/drivers/viostor.sys',
    );
    expect(uploads.some((u) => u.includes('2k16'))).toBe(false);
    expect(uploads.some((u) => u.includes('.pdb'))).toBe(false);
  });
});

describe('first-boot removal of VMware Tools', () => {
  it('is off by default', async () => {
    const { plan: p } = await plan('win2019', { virtioWin });
    expect(p.actions.some((a) => a.kind === 'registry' && a.key.at(-1) === 'RunOnce')).toBe(false);
  });

  it('an MSI install is removed by its product code', async () => {
    const { plan: p } = await plan('win2019');
    const runOnce = p.actions.find((a) => a.kind === 'registry' && a.key.at(-1) === 'RunOnce');
    expect(runOnce && describeAction(runOnce)).toBe(
      '[guestos/windows] create key HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\RunOnce: uninstall VMware Tools at the first logon\n    "v2v-load-remove-vmware-tools" = sz:"msiexec.exe /x {0E63E9C6-C8C9-4F8E-A9F5-8E3A4F1D2C3B} /qn /norestart"',
    );
  });

  it('a guest without VMware Tools in its Uninstall keys gets a warning', async () => {
    const { plan: p } = await plan('win2003', { removeTools: true });
    expect(p.warnings).toContain(
      "VMware Tools: not found with an uninstaller in the guest's Uninstall keys; nothing removes it at first boot",
    );
  });

  it('uninstallCommand: MSI by product code, else the (quiet) uninstall string', () => {
    const key = (values: Record<string, RegValue>) => ({ values, subkeys: [] });
    expect(
      uninstallCommand(
        '{FE2F6A2C-196E-4210-9C04-2B1BC21F07EF}',
        key({ UninstallString: sz('MsiExec.exe /X{FE2F6A2C-196E-4210-9C04-2B1BC21F07EF}') }),
      ),
    ).toBe('msiexec.exe /x {FE2F6A2C-196E-4210-9C04-2B1BC21F07EF} /qn /norestart');
    expect(
      uninstallCommand(
        'VMware Tools',
        key({ UninstallString: sz('u.exe'), QuietUninstallString: sz('u.exe /S') }),
      ),
    ).toBe('u.exe /S');
    expect(uninstallCommand('VMware Tools', key({}))).toBeUndefined();
  });
});

describe('options', () => {
  it('--virtio-win must be an absolute path (a usage error before anything is read)', () => {
    const req: ConvertRequest = {
      source: ['/srv/vm/w.vmx'],
      outputDir: '/srv/out',
      storage: 'copy',
      outputFormat: 'qcow2',
      virtio: true,
      domainType: 'qemu',
      networks: [],
      withFiles: {},
      dryRun: false,
      verifyBoot: false,
      virtioWin: 'virtio-win.iso',
    };
    expect(() => Converter.checkRequest(req)).toThrow(
      new UsageError('--virtio-win virtio-win.iso: the path must be absolute'),
    );
    expect(() =>
      Converter.checkRequest({ ...req, virtioWin: '/srv/virtio-win.iso' }),
    ).not.toThrow();
  });
});

describe('virtio-win layout', () => {
  it('OS folders by version and variant', () => {
    const f = (v: string, variant: string, productName = '') => {
      const [majorVersion, minorVersion] = v.split('.').map(Number) as [number, number];
      return osDirs({ majorVersion, minorVersion, productName, variant });
    };
    expect(f('5.1', 'Client')).toEqual(['xp']);
    expect(f('5.2', 'Server')).toEqual(['2k3']);
    expect(f('6.1', 'Client')).toEqual(['w7']);
    expect(f('6.1', 'Server')).toEqual(['2k8R2']);
    expect(f('6.3', 'Server')).toEqual(['2k12R2']);
    expect(f('10.0', 'Client', 'Windows 10 Pro')).toEqual(['w10']);
    expect(f('10.0', 'Client', 'Windows 11 Pro')).toEqual(['w11', 'w10']);
    expect(f('10.0', 'Server', 'Windows Server 2019 Standard')).toEqual(['2k19']);
    expect(f('10.0', 'Server', 'Windows Server 2022 Datacenter')).toEqual(['2k22']);
    expect(f('4.0', 'Client')).toEqual([]);
  });

  it('picks driver folders case-insensitively; a folder without .inf does not count', () => {
    const tree = {
      source: '/iso',
      kind: 'iso' as const,
      files: [
        'NetKVM/w7/amd64/netkvm.sys',
        'NetKVM/w7/amd64/netkvm.inf',
        'NetKVM/w7/amd64/netkvm.cat',
        'viostor/w7/amd64/viostor.sys',
        'viostor/w7/amd64/sub/viostor.inf',
        'viostor/w7/x86/viostor.sys',
        'viostor/w7/x86/viostor.inf',
      ],
    };
    const r = pickDrivers(tree, {
      majorVersion: 6,
      minorVersion: 1,
      productName: 'Windows 7',
      arch: 'x86_64',
      variant: 'Client',
    });
    expect(r.picks).toEqual([
      {
        name: 'netkvm',
        dir: 'NetKVM/w7/amd64',
        files: [
          'NetKVM/w7/amd64/netkvm.sys',
          'NetKVM/w7/amd64/netkvm.inf',
          'NetKVM/w7/amd64/netkvm.cat',
        ],
      },
    ]);
    expect(r.looked).toEqual(['viostor/w7/amd64', 'vioscsi/w7/amd64', 'netkvm/w7/amd64']);
  });

  it('parses xorriso -find output', () => {
    expect(
      parseXorrisoFind("'/viostor/w7/amd64/viostor.sys'\n'/a/it'\\''s.inf'\nxorriso : NOTE\n"),
    ).toEqual(['viostor/w7/amd64/viostor.sys', "a/it's.inf"]);
  });
});

describe('registry values', () => {
  it('round-trip through hivex bytes', () => {
    const values: RegValue[] = [
      sz('atapi'),
      expandSz('System32\\DRIVERS\\atapi.sys'),
      dword(0xffffffff),
      multiSz('a', 'b'),
      { type: 'binary', value: '01ff0000' },
    ];
    for (const v of values) {
      const { type, data } = encodeRegValue(v);
      expect(decodeRegValue(type, data)).toEqual(v);
    }
    expect(encodeRegValue(dword(4)).data).toEqual(Buffer.from([4, 0, 0, 0]));
    expect(encodeRegValue(sz('ab')).data).toEqual(Buffer.from([0x61, 0, 0x62, 0, 0, 0]));
  });

  it('applying a plan sets consecutive values of one hive in one call (one open and commit)', async () => {
    const { plan: p } = await plan('win2019');
    const calls: { hive: string; keys: number }[] = [];
    const stub = {
      regSet: async (hive: string, edits: readonly unknown[]) => {
        calls.push({ hive, keys: edits.length });
      },
      isDir: async () => true,
      mkdirP: async () => {},
      fs: { call: async () => undefined },
    };
    const events: string[] = [];
    await applyPlan(p, stub as unknown as Guest, (e) => events.push(e.action.kind));
    expect(calls).toEqual([
      { hive: '/Windows/System32/config/SYSTEM', keys: 11 },
      { hive: '/Windows/System32/config/SOFTWARE', keys: 1 },
      { hive: '/Windows/System32/config/SYSTEM', keys: 8 },
      { hive: '/Windows/System32/config/SYSTEM', keys: 8 },
      { hive: '/Windows/System32/config/SOFTWARE', keys: 1 },
    ]);
    expect(events.length).toBe(p.actions.length);
  });

  it('a plan reads its own planned values; unchanged values are not planned', async () => {
    const reg = new MemRegistry().set('/h', 'A\\B', { Start: dword(3) });
    const p = new Plan(new MemWindowsGuest({}, reg));
    expect(await p.regSet('SYSTEM', '/h', ['a', 'b'], { start: dword(3) }, 't', 'w')).toEqual([]);
    await p.regSet('SYSTEM', '/h', ['A', 'B', 'C'], { X: sz('y') }, 't', 'w');
    expect((await p.regKey('/h', ['a', 'b']))?.subkeys).toEqual(['C']);
    expect((await p.regKey('/h', ['A', 'b', 'c']))?.values).toEqual({ X: sz('y') });
    expect(p.actions.length).toBe(1);
  });
});
