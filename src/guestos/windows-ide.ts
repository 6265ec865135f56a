/**
 * What a Windows guest needs to boot from IDE on KVM (i440fx: PIIX3 IDE, PCI 8086:7010).
 * Windows 5.x (2000, XP, 2003) finds a boot controller it has never seen only through the
 * CriticalDeviceDatabase: Microsoft's MergeIDE set (KB 314082) maps the IDE channels and the
 * common PCI IDE controllers to atapi / intelide / pciide, whose services must start at boot.
 */
import { dword, expandSz, type RegValue, sz } from '../convert/registry.js';

/** The IDE controller class ({4D36E96A-...}: hdc). */
export const IDE_CLASS_GUID = '{4D36E96A-E325-11CE-BFC1-08002BE10318}';
/** The disk drive class, for `gendisk`. */
export const DISK_CLASS_GUID = '{4D36E967-E325-11CE-BFC1-08002BE10318}';

/** CriticalDeviceDatabase entries of MergeIDE: device ID → service (class IDE unless disk). */
export const IDE_CRITICAL_DEVICES: readonly { id: string; service: string; classGuid: string }[] = [
  ...['primary_ide_channel', 'secondary_ide_channel', '*pnp0600', '*azt0502'].map((id) => ({
    id,
    service: 'atapi',
  })),
  { id: 'gendisk', service: 'disk' },
  ...[
    'pci#cc_0101',
    'pci#ven_0e11&dev_ae33',
    'pci#ven_1039&dev_0601',
    'pci#ven_1039&dev_5513',
    'pci#ven_1042&dev_1000',
    'pci#ven_105a&dev_4d33',
    'pci#ven_1095&dev_0640',
    'pci#ven_1095&dev_0646',
    'pci#ven_1095&dev_0646&rev_05',
    'pci#ven_1095&dev_0646&rev_07',
    'pci#ven_1095&dev_0648',
    'pci#ven_1095&dev_0649',
    'pci#ven_1097&dev_0038',
    'pci#ven_10ad&dev_0001',
    'pci#ven_10ad&dev_0150',
    'pci#ven_10b9&dev_5215',
    'pci#ven_10b9&dev_5219',
    'pci#ven_10b9&dev_5229',
    'pci#ven_1106&dev_0571',
  ].map((id) => ({ id, service: 'pciide' })),
  ...[
    'pci#ven_8086&dev_1222',
    'pci#ven_8086&dev_1230',
    'pci#ven_8086&dev_2411',
    'pci#ven_8086&dev_2421',
    'pci#ven_8086&dev_7010',
    'pci#ven_8086&dev_7111',
    'pci#ven_8086&dev_7199',
  ].map((id) => ({ id, service: 'intelide' })),
].map((e) => ({
  ...e,
  classGuid: e.service === 'disk' ? DISK_CLASS_GUID : IDE_CLASS_GUID,
}));

/** The IDE driver services (names as Windows 5.x spells them; found case-insensitively). */
export const IDE_SERVICES: readonly { name: string; values: Record<string, RegValue> }[] = [
  {
    name: 'atapi',
    values: {
      Type: dword(1),
      Start: dword(0),
      ErrorControl: dword(1),
      Group: sz('SCSI miniport'),
      Tag: dword(0x19),
      DisplayName: sz('Standard IDE/ESDI Hard Disk Controller'),
      ImagePath: expandSz('System32\\DRIVERS\\atapi.sys'),
    },
  },
  {
    name: 'IntelIde',
    values: {
      Type: dword(1),
      Start: dword(0),
      ErrorControl: dword(1),
      Group: sz('System Bus Extender'),
      Tag: dword(4),
      ImagePath: expandSz('System32\\DRIVERS\\intelide.sys'),
    },
  },
  {
    name: 'PCIIde',
    values: {
      Type: dword(1),
      Start: dword(0),
      ErrorControl: dword(1),
      Group: sz('System Bus Extender'),
      Tag: dword(3),
      ImagePath: expandSz('System32\\DRIVERS\\pciide.sys'),
    },
  },
];

/** The names the Windows GuestOS takes as "the IDE drivers". */
export const WINDOWS_IDE_DRIVERS = IDE_SERVICES.map((s) => s.name.toLowerCase());
