/**
 * In-memory Windows guests for plan tests (no appliance): the guests of
 * test/fixtures/windows-guest/guests.json as files (system root, System32, drivers, hives) and
 * a registry (keys by hive file), read through the same interface the appliance gives.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GuestInspection } from '../../src/convert/inspection.js';
import {
  binary,
  dword,
  expandSz,
  multiSz,
  type RegKey,
  type RegValue,
  sz,
} from '../../src/convert/registry.js';
import type { SourceGuest } from '../../src/metadata/model.js';
import { MemGuest, sourceDisk, vmwareSource } from './mem-guest.js';
import type { WindowsGuestName } from './windows-guest.js';

/** A registry: hive file path → key path (backslashes) → values. */
export class MemRegistry {
  private readonly keys = new Map<string, { parts: string[]; values: Record<string, RegValue> }>();

  set(hive: string, key: string, values: Record<string, RegValue> = {}): this {
    const parts = key.split('\\').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const id = `${hive}\0${parts.slice(0, i).join('\\').toLowerCase()}`;
      const e = this.keys.get(id) ?? { parts: parts.slice(0, i), values: {} };
      if (i === parts.length) Object.assign(e.values, values);
      this.keys.set(id, e);
    }
    return this;
  }

  async regKeys(
    hive: string,
    keys: readonly (readonly string[])[],
  ): Promise<(RegKey | undefined)[]> {
    return keys.map((k) => {
      const id = `${hive}\0${k.join('\\').toLowerCase()}`;
      const e = this.keys.get(id);
      if (!e && k.length) return undefined;
      const subkeys = [...this.keys.values()]
        .filter(
          (x) =>
            x.parts.length === k.length + 1 &&
            x.parts.slice(0, k.length).join('\\').toLowerCase() === k.join('\\').toLowerCase(),
        )
        .map((x) => x.parts.at(-1) as string);
      return { values: { ...(e?.values ?? {}) }, subkeys };
    });
  }
}

export class MemWindowsGuest extends MemGuest {
  constructor(
    files: Record<string, string>,
    readonly registry: MemRegistry,
  ) {
    super(files);
  }

  regKeys(hive: string, keys: readonly (readonly string[])[]): Promise<(RegKey | undefined)[]> {
    return this.registry.regKeys(hive, keys);
  }
}

type SpecValue = number | string | { expand: string } | { multi: string[] } | { binary: string };

interface GuestSpec {
  systemRoot: string;
  system32: string;
  hiveNames: [string, string];
  arch: string;
  productName: string;
  currentVersion: string;
  major?: number;
  minor?: number;
  build: string;
  variant: string;
  hostname: string;
  cdd?: boolean;
  current?: number;
  driverFiles?: string[];
  controlSets: Record<string, Record<string, Record<string, SpecValue>>>;
  systemExtra?: Record<string, Record<string, SpecValue>>;
  softwareExtra?: Record<string, Record<string, SpecValue>>;
  vmx: { bus: string; scsi?: string; nic: string; mac: string; memory: number; vcpus: number };
}

export const GUESTS_JSON = path.resolve(
  import.meta.dirname,
  '../fixtures/windows-guest/guests.json',
);

export function guestSpecs(): {
  guests: Record<WindowsGuestName, GuestSpec>;
  virtioWin: Record<string, string[]>;
} {
  return JSON.parse(fs.readFileSync(GUESTS_JSON, 'utf8'));
}

function regValue(v: SpecValue): RegValue {
  if (typeof v === 'number') return dword(v);
  if (typeof v === 'string') return sz(v);
  if ('expand' in v) return expandSz(v.expand);
  if ('multi' in v) return multiSz(...v.multi);
  return binary(v.binary);
}

function values(o: Record<string, SpecValue> = {}): Record<string, RegValue> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k === '@' ? '' : k, regValue(v)]));
}

/** A fixture guest as an in-memory guest, with what inspection would find and its source. */
export function memWindowsGuest(name: WindowsGuestName): {
  guest: MemWindowsGuest;
  inspection: GuestInspection;
  source: SourceGuest;
} {
  const g = guestSpecs().guests[name];
  const root = `/${g.systemRoot}`;
  const sys32 = `${root}/${g.system32}`;
  const systemHive = `${sys32}/config/${g.hiveNames[0]}`;
  const softwareHive = `${sys32}/config/${g.hiveNames[1]}`;
  const files: Record<string, string> = {
    [`${sys32}/cmd.exe`]: 'MZ',
    [systemHive]: '',
    [softwareHive]: '',
    [`${root}/inf/`]: '',
    [`${sys32}/drivers/`]: '',
    '/Program Files/VMware/VMware Tools/vmtoolsd.exe': '',
  };
  for (const d of g.driverFiles ?? []) files[`${sys32}/drivers/${d}`] = '';
  const reg = new MemRegistry();
  const current = g.current ?? 1;
  reg.set(systemHive, 'Select', {
    Current: dword(current),
    Default: dword(current),
    LastKnownGood: dword(current),
    Failed: dword(0),
  });
  for (const [cs, services] of Object.entries(g.controlSets)) {
    reg.set(systemHive, `${cs}\\Control\\ComputerName\\ComputerName`, {
      ComputerName: sz(g.hostname),
    });
    if (g.cdd) reg.set(systemHive, `${cs}\\Control\\CriticalDeviceDatabase`);
    reg.set(systemHive, `${cs}\\Services\\Tcpip\\Parameters`, { Hostname: sz(g.hostname) });
    for (const [svc, v] of Object.entries(services)) {
      reg.set(systemHive, `${cs}\\Services\\${svc}`, values(v));
    }
  }
  reg.set(systemHive, 'MountedDevices');
  for (const [k, v] of Object.entries(g.systemExtra ?? {})) reg.set(systemHive, k, values(v));
  const nt: Record<string, RegValue> = {
    ProductName: sz(g.productName),
    CurrentVersion: sz(g.currentVersion),
    CurrentBuildNumber: sz(g.build),
    InstallationType: sz(g.variant),
  };
  if (g.major !== undefined) {
    nt.CurrentMajorVersionNumber = dword(g.major);
    nt.CurrentMinorVersionNumber = dword(g.minor ?? 0);
  }
  reg.set(softwareHive, 'Microsoft\\Windows NT\\CurrentVersion', nt);
  reg.set(softwareHive, 'Microsoft\\Windows\\CurrentVersion', {
    DevicePath: expandSz('%SystemRoot%\\inf'),
    ProgramFilesDir: sz('C:\\Program Files'),
  });
  reg.set(softwareHive, 'Microsoft\\Windows\\CurrentVersion\\Uninstall');
  for (const [k, v] of Object.entries(g.softwareExtra ?? {})) reg.set(softwareHive, k, values(v));

  const [major, minor] =
    g.major !== undefined ? [g.major, g.minor ?? 0] : g.currentVersion.split('.').map(Number);
  const inspection: GuestInspection = {
    root: '/dev/sda1',
    type: 'windows',
    distro: 'windows',
    family: 'windows',
    majorVersion: major as number,
    minorVersion: minor as number,
    productName: g.productName,
    arch: g.arch,
    packageFormat: 'unknown',
    packageManager: 'unknown',
    mountpoints: { '/': '/dev/sda1' },
    packages: [],
    kernels: [],
    initramfsTool: 'none',
    bootloader: { kind: 'unknown' },
    windows: { systemRoot: root, systemHive, softwareHive, productVariant: g.variant },
  };
  const v = g.vmx;
  const source = vmwareSource({
    name,
    osHint: name,
    memoryBytes: v.memory * 1024 ** 2,
    vcpus: v.vcpus,
    disks: [
      v.bus === 'ide'
        ? sourceDisk({
            path: `/srv/vm/${name}/${name}.vmdk`,
            bus: 'ide',
            controller: 'ide',
            slot: 'ide0:0',
          })
        : sourceDisk({ path: `/srv/vm/${name}/${name}.vmdk`, controller: v.scsi as 'pvscsi' }),
    ],
    nics: [
      {
        mac: v.mac,
        model: v.nic as 'vmxnet3',
        network: 'VM Network',
        networkKind: 'network',
      },
    ],
    origin: { kind: 'vmx', source: `/srv/vm/${name}/${name}.vmx` },
  });
  return { guest: new MemWindowsGuest(files, reg), inspection, source };
}
