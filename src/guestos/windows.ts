/**
 * GuestOS Windows: everything through the registry (hivex in the conversion's one appliance)
 * and plain file copies. Services are keys of the active control set (the one
 * `HKLM\SYSTEM\Select\Current` names, never a hard-coded ControlSet001); boot drivers need a
 * service with Start = 0 and a way for Windows to match the new controller to it: the
 * CriticalDeviceDatabase before Windows 8, the DriverDatabase from Windows 8 on. Applications
 * are removed at first boot (a RunOnce entry running their uninstaller), never from outside.
 */
import { ConversionError } from '../convert/errors.js';
import type { GuestInspection, WindowsInfo } from '../convert/inspection.js';
import type { ConversionContext, GuestOs, InterfaceIdentity } from '../convert/modules.js';
import type { Plan } from '../convert/plan.js';
import {
  binary,
  dword,
  expandSz,
  multiSz,
  type RegKey,
  type RegValue,
  regValueOf,
  sz,
} from '../convert/registry.js';
import { IDE_CRITICAL_DEVICES, IDE_SERVICES, WINDOWS_IDE_DRIVERS } from './windows-ide.js';

const BY = 'guestos/windows';

/** The SCSI adapter class ({4D36E97B-...}): viostor and vioscsi. */
export const SCSI_ADAPTER_GUID = '{4D36E97B-E325-11CE-BFC1-08002BE10318}';

export const VIRTIO_DRIVER_NAMES = ['viostor', 'vioscsi', 'netkvm'] as const;
export type VirtioDriverName = (typeof VIRTIO_DRIVER_NAMES)[number];

/** The boot (storage) drivers: their PCI IDs (legacy/transitional and virtio 1.0). */
export const VIRTIO_STORAGE: Record<
  'viostor' | 'vioscsi',
  { pciIds: string[]; configuration: string }
> = {
  viostor: {
    pciIds: [
      'VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00',
      'VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01',
    ],
    configuration: 'rhelscsi_inst',
  },
  vioscsi: {
    pciIds: [
      'VEN_1AF4&DEV_1004&SUBSYS_00081AF4&REV_00',
      'VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01',
    ],
    configuration: 'scsi_inst',
  },
};

/** One virtio driver's files on the node, found for this guest (see hvtarget/virtio-win.ts). */
export interface WindowsDriverFiles {
  name: VirtioDriverName;
  /** Where in the driver tree they come from, e.g. `viostor/w7/amd64`. */
  from: string;
  /** Node paths of the driver's files (.sys, .inf, .cat). */
  files: string[];
  /** 16 hex digits identifying its .inf (the DriverDatabase package name's suffix). */
  infId: string;
}

/** The hives of the guest and its active control set. */
export interface WindowsRegistry {
  system: string;
  software: string;
  /** e.g. `ControlSet002` */
  controlSet: string;
}

/** What {@link WindowsGuestOs.disableServices} found. */
export interface ServiceReport {
  /** Found with another Start value, now 4: name as stored and the Start it had. */
  changed: { name: string; before: number | undefined }[];
  /** Found already disabled. */
  unchanged: string[];
  /** Not in the guest. */
  absent: string[];
}

/** Where the virtio drivers go, below the system root (PnP finds them through DevicePath). */
export const DRIVER_DIR = 'Drivers/VirtIO';
const DEVICE_PATH_DIR = '%SystemRoot%\\Drivers\\VirtIO';
const CURRENT_VERSION = ['Microsoft', 'Windows', 'CurrentVersion'];
const UNINSTALL_KEYS = [
  [...CURRENT_VERSION, 'Uninstall'],
  ['Wow6432Node', ...CURRENT_VERSION, 'Uninstall'],
];

function windowsInfo(ctx: ConversionContext): WindowsInfo {
  const w = ctx.inspection.windows;
  if (!w) {
    throw new ConversionError(
      `${ctx.source.name}: inspection found no Windows system root and registry in the guest`,
    );
  }
  return w;
}

/** True for Windows 8 / Server 2012 (6.2) and later: the DriverDatabase replaces the CDD. */
export function usesDriverDatabase(i: Pick<GuestInspection, 'majorVersion' | 'minorVersion'>) {
  return i.majorVersion > 6 || (i.majorVersion === 6 && i.minorVersion >= 2);
}

/**
 * A guest path with each existing component spelled as the guest spells it (NTFS through
 * ntfs-3g is case-sensitive, Windows is not); missing components keep the given spelling.
 */
export async function resolveCase(plan: Plan, path: string): Promise<string> {
  let out = '';
  for (const part of path.split('/').filter(Boolean)) {
    const names = await plan.ls(out || '/');
    const hit =
      names.find((n) => n === part) ?? names.find((n) => n.toLowerCase() === part.toLowerCase());
    out += `/${hit ?? part}`;
  }
  return out || '/';
}

export class WindowsGuestOs implements GuestOs {
  readonly name = 'windows';

  applies(inspection: GuestInspection): boolean {
    return inspection.type === 'windows';
  }

  /**
   * The hives and the control set `Select\Current` names.
   * @throws ConversionError when the SYSTEM hive has no usable Select\Current
   */
  async registry(plan: Plan, ctx: ConversionContext): Promise<WindowsRegistry> {
    const w = windowsInfo(ctx);
    let select: RegKey | undefined;
    try {
      select = await plan.regKey(w.systemHive, ['Select']);
    } catch (e) {
      throw new ConversionError(
        `${ctx.source.name}: the guest's SYSTEM hive ${w.systemHive} cannot be read: ${(e as Error).message}`,
        {
          cause: e,
          hint: 'the registry hive is damaged: repair the guest (or restore the hive) on its hypervisor first',
        },
      );
    }
    const current = regValueOf(select, 'Current');
    if (current?.type !== 'dword' || current.value < 1 || current.value > 999) {
      throw new ConversionError(
        `${ctx.source.name}: HKLM\\SYSTEM\\Select\\Current in ${w.systemHive} is missing or not a control set number`,
        { hint: 'the SYSTEM hive is damaged or not a Windows SYSTEM hive' },
      );
    }
    const controlSet = `ControlSet${String(current.value).padStart(3, '0')}`;
    if (!(await plan.regKey(w.systemHive, [controlSet]))) {
      throw new ConversionError(
        `${ctx.source.name}: HKLM\\SYSTEM\\Select\\Current names ${controlSet}, which ${w.systemHive} does not have`,
        { hint: 'the SYSTEM hive is damaged' },
      );
    }
    return { system: w.systemHive, software: w.softwareHive, controlSet };
  }

  /** Sets Start = 4 on each of `names` found among the active control set's services. */
  async disableServices(
    plan: Plan,
    names: readonly string[],
    ctx: ConversionContext,
    by: string,
    why: string,
  ): Promise<ServiceReport> {
    const r = await this.registry(plan, ctx);
    const services = await plan.regKey(r.system, [r.controlSet, 'Services']);
    const stored = new Map((services?.subkeys ?? []).map((n) => [n.toLowerCase(), n]));
    const report: ServiceReport = { changed: [], unchanged: [], absent: [] };
    const found = names.map((n) => stored.get(n.toLowerCase()));
    const keys = await plan.regKeys(
      r.system,
      found.filter((n): n is string => !!n).map((n) => [r.controlSet, 'Services', n]),
    );
    let k = 0;
    for (const [i, want] of names.entries()) {
      const name = found[i];
      if (!name) {
        report.absent.push(want);
        continue;
      }
      const start = regValueOf(keys[k++], 'Start');
      const before = start?.type === 'dword' ? start.value : undefined;
      if (before === 4) {
        report.unchanged.push(name);
        continue;
      }
      await plan.regSet(
        'SYSTEM',
        r.system,
        [r.controlSet, 'Services', name],
        { Start: dword(4) },
        by,
        `${why} ${name}`,
      );
      report.changed.push({ name, before });
    }
    return report;
  }

  /**
   * The IDE drivers (atapi, intelide, pciide) start at boot; Windows 5.x also gets MergeIDE's
   * CriticalDeviceDatabase entries. Other driver names need their files: see
   * {@link installVirtioDrivers}.
   */
  async enableDrivers(
    plan: Plan,
    drivers: readonly string[],
    ctx: ConversionContext,
  ): Promise<void> {
    const other = drivers.filter((d) => !WINDOWS_IDE_DRIVERS.includes(d.toLowerCase()));
    if (other.length) {
      throw new ConversionError(
        `guestos/windows: ${other.join(', ')} cannot be enabled without their driver files`,
      );
    }
    if (!drivers.length) return;
    const r = await this.registry(plan, ctx);
    if (ctx.inspection.majorVersion < 6) {
      for (const d of IDE_CRITICAL_DEVICES) {
        await plan.regSet(
          'SYSTEM',
          r.system,
          [r.controlSet, 'Control', 'CriticalDeviceDatabase', d.id],
          { ClassGUID: sz(d.classGuid), Service: sz(d.service) },
          BY,
          'boot from IDE: match the controller to its driver (MergeIDE)',
        );
      }
    }
    const want = IDE_SERVICES.filter((s) =>
      drivers.some((d) => d.toLowerCase() === s.name.toLowerCase()),
    );
    await this.bootServices(plan, r, want, 'boot from IDE: driver starts at boot');
  }

  /**
   * Services that start at boot: an existing key gets Start = 0 (and an ImagePath when it
   * has none); an absent one is created whole.
   */
  private async bootServices(
    plan: Plan,
    r: WindowsRegistry,
    services: readonly { name: string; values: Record<string, RegValue> }[],
    why: string,
  ): Promise<void> {
    const all = await plan.regKey(r.system, [r.controlSet, 'Services']);
    const stored = new Map((all?.subkeys ?? []).map((n) => [n.toLowerCase(), n]));
    for (const s of services) {
      const name = stored.get(s.name.toLowerCase()) ?? s.name;
      const key = [r.controlSet, 'Services', name];
      const have = await plan.regKey(r.system, key);
      const values: Record<string, RegValue> = {};
      for (const [n, v] of Object.entries(s.values)) {
        if (!have || n === 'Start' || (n === 'ImagePath' && !regValueOf(have, n))) values[n] = v;
      }
      await plan.regSet('SYSTEM', r.system, key, values, BY, `${why} (${name})`);
    }
  }

  /**
   * Installs virtio drivers: their files into %SystemRoot%\Drivers\VirtIO (added to
   * DevicePath, so PnP installs them), and each storage driver's .sys into
   * System32\drivers with a boot-start service and the entries that let Windows load it for
   * the virtio controller at boot (CriticalDeviceDatabase before Windows 8, else
   * DriverDatabase).
   */
  async installVirtioDrivers(
    plan: Plan,
    drivers: readonly WindowsDriverFiles[],
    ctx: ConversionContext,
  ): Promise<void> {
    if (!drivers.length) return;
    const w = windowsInfo(ctx);
    const r = await this.registry(plan, ctx);
    const root = await resolveCase(plan, w.systemRoot);
    const driverDir = await resolveCase(plan, `${root}/${DRIVER_DIR}`);
    const sysDrivers = await resolveCase(plan, `${root}/System32/drivers`);
    for (const d of drivers) {
      for (const f of d.files) {
        const base = f.slice(f.lastIndexOf('/') + 1).toLowerCase();
        plan.upload(f, `${driverDir}/${base}`, BY, `virtio driver ${d.name} (${d.from})`);
      }
    }
    for (const all of drivers) {
      const name = all.name;
      if (name === 'netkvm') continue;
      const d = { ...all, name };
      const sys = d.files.find((f) => f.toLowerCase().endsWith(`/${d.name}.sys`));
      if (!sys) {
        throw new ConversionError(`virtio driver ${d.name} (${d.from}) has no ${d.name}.sys`);
      }
      plan.upload(sys, `${sysDrivers}/${d.name}.sys`, BY, `boot driver ${d.name}`);
      await this.bootServices(
        plan,
        r,
        [
          {
            name: d.name,
            values: {
              Type: dword(1),
              Start: dword(0),
              ErrorControl: dword(1),
              Group: sz('SCSI miniport'),
              ImagePath: expandSz(`system32\\drivers\\${d.name}.sys`),
            },
          },
        ],
        'boot from virtio: driver starts at boot',
      );
      if (usesDriverDatabase(ctx.inspection)) await this.driverDatabase(plan, r, d, ctx);
      else {
        for (const id of VIRTIO_STORAGE[d.name].pciIds) {
          await plan.regSet(
            'SYSTEM',
            r.system,
            [r.controlSet, 'Control', 'CriticalDeviceDatabase', `pci#${id.toLowerCase()}`],
            { ClassGUID: sz(SCSI_ADAPTER_GUID), Service: sz(d.name) },
            BY,
            `boot from virtio: match the controller to ${d.name}`,
          );
        }
      }
    }
    await this.addDevicePath(plan, r, DEVICE_PATH_DIR);
  }

  /** Windows 8+: the driver package in the DriverDatabase, as if installed as oemN.inf. */
  private async driverDatabase(
    plan: Plan,
    r: WindowsRegistry,
    d: WindowsDriverFiles & { name: 'viostor' | 'vioscsi' },
    ctx: ConversionContext,
  ): Promise<void> {
    const arch = ctx.inspection.arch === 'x86_64' ? 'amd64' : 'x86';
    const pkg = `${d.name}.inf_${arch}_${d.infId}`;
    const { pciIds, configuration } = VIRTIO_STORAGE[d.name];
    const classKey = ['DriverDatabase', 'DeviceIds', SCSI_ADAPTER_GUID.toLowerCase()];
    const infFiles = await plan.regKey(r.system, ['DriverDatabase', 'DriverInfFiles']);
    const taken = new Set((infFiles?.subkeys ?? []).map((n) => n.toLowerCase()));
    const cls = await plan.regKey(r.system, classKey);
    for (const n of Object.keys(cls?.values ?? {})) taken.add(n.toLowerCase());
    let oem = 1;
    while (taken.has(`oem${oem}.inf`)) oem++;
    const inf = `oem${oem}.inf`;
    const why = `boot from virtio: ${d.name} in the DriverDatabase as ${inf}`;
    const set = (key: string[], values: Record<string, RegValue>) =>
      plan.regSet('SYSTEM', r.system, key, values, BY, why);
    await set(classKey, { [inf]: { type: 'other', code: 0, value: '' } });
    await set(['DriverDatabase', 'DriverInfFiles', inf], {
      '': multiSz(pkg),
      Active: sz(pkg),
      Configurations: multiSz(configuration),
    });
    for (const id of pciIds) {
      await set(['DriverDatabase', 'DeviceIds', 'PCI', id], { [inf]: binary('01ff0000') });
    }
    await set(['DriverDatabase', 'DriverPackages', pkg, 'Configurations', configuration], {
      ConfigFlags: dword(0),
      Service: sz(d.name),
    });
    for (const id of pciIds) {
      await set(['DriverDatabase', 'DriverPackages', pkg, 'Descriptors', 'PCI', id], {
        Configuration: sz(configuration),
      });
    }
  }

  /** Adds a folder to DevicePath (where PnP looks for drivers), once. */
  private async addDevicePath(plan: Plan, r: WindowsRegistry, dir: string): Promise<void> {
    const cv = await plan.regKey(r.software, CURRENT_VERSION);
    const now = regValueOf(cv, 'DevicePath');
    const text =
      now && (now.type === 'sz' || now.type === 'expand_sz') ? now.value : '%SystemRoot%\\inf';
    const parts = text.split(';').filter(Boolean);
    if (parts.some((p) => p.toLowerCase() === dir.toLowerCase())) return;
    await plan.regSet(
      'SOFTWARE',
      r.software,
      CURRENT_VERSION,
      { DevicePath: expandSz([...parts, dir].join(';')) },
      BY,
      'PnP finds the virtio drivers at first boot',
    );
  }

  /**
   * Removes applications at the first logon on the new hypervisor: a RunOnce entry runs each
   * one's uninstaller (found by its DisplayName in the Uninstall keys). An application not
   * found is a warning.
   */
  async removeApplications(
    plan: Plan,
    names: readonly string[],
    ctx: ConversionContext,
  ): Promise<void> {
    if (!names.length) return;
    const r = await this.registry(plan, ctx);
    const lists = await plan.regKeys(r.software, UNINSTALL_KEYS);
    const entries: string[][] = [];
    lists.forEach((l, i) => {
      for (const s of l?.subkeys ?? []) entries.push([...(UNINSTALL_KEYS[i] as string[]), s]);
    });
    const keys = await plan.regKeys(r.software, entries);
    for (const name of names) {
      const i = keys.findIndex((k) => {
        const dn = regValueOf(k, 'DisplayName');
        return dn?.type === 'sz' && dn.value.toLowerCase() === name.toLowerCase();
      });
      const command = i >= 0 ? uninstallCommand(entries[i]?.at(-1) as string, keys[i]) : undefined;
      if (!command) {
        plan.warn(
          `${name}: not found with an uninstaller in the guest's Uninstall keys; nothing removes it at first boot`,
        );
        continue;
      }
      await plan.regSet(
        'SOFTWARE',
        r.software,
        [...CURRENT_VERSION, 'RunOnce'],
        { [`v2v-load-remove-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`]: sz(command) },
        BY,
        `uninstall ${name} at the first logon`,
      );
    }
  }

  /** Windows names disks by drive letter and volume ID, not by device name: nothing to do. */
  async remapDeviceNames(): Promise<void> {}

  /** Interfaces are kept by Windows per adapter: nothing is pinned here. */
  async keepNetworkIdentity(): Promise<InterfaceIdentity[]> {
    return [];
  }

  /** The boot drivers are set up by enableDrivers / installVirtioDrivers: nothing more. */
  async prepareBootable(): Promise<void> {}
}

/** The silent uninstall command of an Uninstall entry (MSI products by their code). */
export function uninstallCommand(keyName: string, key: RegKey | undefined): string | undefined {
  const str = (n: string) => {
    const v = regValueOf(key, n);
    return v && (v.type === 'sz' || v.type === 'expand_sz') ? v.value : undefined;
  };
  const msi = regValueOf(key, 'WindowsInstaller');
  if (
    /^\{[0-9A-Fa-f-]{36}\}$/.test(keyName) &&
    (msi?.type === 'dword' ? msi.value === 1 : /msiexec/i.test(str('UninstallString') ?? ''))
  ) {
    return `msiexec.exe /x ${keyName} /qn /norestart`;
  }
  return str('QuietUninstallString') ?? str('UninstallString');
}

/** The Windows GuestOS of a conversion, or a clear error. */
export function asWindows(os: GuestOs, by: string): WindowsGuestOs {
  if (os instanceof WindowsGuestOs) return os;
  throw new ConversionError(`${by}: needs the Windows guest OS module, not ${os.name}`);
}
