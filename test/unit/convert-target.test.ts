/** The target layout: source device names, target names per bus, NIC networks and MACs. */
import { describe, expect, it } from 'vitest';
import {
  diskLetters,
  generatedMac,
  parseNetworkMapping,
  sourceDeviceNames,
  targetLayout,
} from '../../src/convert/target.js';
import { UsageError } from '../../src/errors.js';
import type { SourceNic } from '../../src/metadata/model.js';
import { sourceDisk, vmwareSource, xenPvSource } from '../harness/mem-guest.js';

const layoutOpts = { outputDir: '/srv/out', outputFormat: 'qcow2' as const, networks: [] };

describe('diskLetters', () => {
  it.each([
    [0, 'a'],
    [1, 'b'],
    [25, 'z'],
    [26, 'aa'],
    [27, 'ab'],
    [51, 'az'],
    [52, 'ba'],
    [701, 'zz'],
    [702, 'aaa'],
  ])('%i → %s', (i, letters) => {
    expect(diskLetters(i)).toBe(letters);
  });
});

describe('sourceDeviceNames', () => {
  it('names SCSI (pvscsi) and SATA disks sd* in disk order', () => {
    const disks = [
      sourceDisk({ slot: 'scsi0:0', controllerIndex: 0, unit: 0 }),
      sourceDisk({ slot: 'scsi0:1', controllerIndex: 0, unit: 1 }),
      sourceDisk({ slot: 'sata0:0', bus: 'sata', controller: 'sata', controllerIndex: 0, unit: 0 }),
    ];
    expect(sourceDeviceNames(disks)).toEqual(['sda', 'sdb', 'sdc']);
  });

  it('names IDE disks by controller and unit (ide1:0 is hdc), NVMe by controller and namespace', () => {
    const disks = [
      sourceDisk({ slot: 'ide0:0', bus: 'ide', controller: 'ide', controllerIndex: 0, unit: 0 }),
      sourceDisk({ slot: 'ide0:1', bus: 'ide', controller: 'ide', controllerIndex: 0, unit: 1 }),
      sourceDisk({ slot: 'ide1:0', bus: 'ide', controller: 'ide', controllerIndex: 1, unit: 0 }),
      sourceDisk({ slot: 'nvme0:0', bus: 'nvme', controller: 'nvme', controllerIndex: 0, unit: 0 }),
      sourceDisk({ slot: 'nvme0:1', bus: 'nvme', controller: 'nvme', controllerIndex: 0, unit: 1 }),
      sourceDisk({ slot: 'nvme1:0', bus: 'nvme', controller: 'nvme', controllerIndex: 1, unit: 0 }),
    ];
    expect(sourceDeviceNames(disks)).toEqual([
      'hda',
      'hdb',
      'hdc',
      'nvme0n1',
      'nvme0n2',
      'nvme1n1',
    ]);
  });

  it('keeps the device a libvirt source names (xvda, hdb, sdc, vdb)', () => {
    const disks = [
      sourceDisk({ slot: 'xvda', bus: 'xen', controller: 'xen' }),
      sourceDisk({ slot: 'hdb', bus: 'ide', controller: 'ide', controllerIndex: 0, unit: 0 }),
      sourceDisk({ slot: 'sdc', bus: 'scsi' }),
      sourceDisk({ slot: 'vdb', bus: 'virtio', controller: 'virtio' }),
    ];
    expect(sourceDeviceNames(disks)).toEqual(['xvda', 'hdb', 'sdc', 'vdb']);
  });

  it('counts Xen and virtio disks without a device name apart from SCSI ones', () => {
    const disks = [
      sourceDisk({ slot: 'ovf:/disk/1', bus: 'xen', controller: 'xen' }),
      sourceDisk({ slot: 'ovf:/disk/2', bus: 'scsi' }),
      sourceDisk({ slot: 'ovf:/disk/3', bus: 'xen', controller: 'xen' }),
      sourceDisk({ slot: 'ovf:/disk/4', bus: 'virtio', controller: 'virtio' }),
    ];
    expect(sourceDeviceNames(disks)).toEqual(['xvda', 'sda', 'xvdb', 'vda']);
  });
});

describe('targetLayout', () => {
  const twoDisks = vmwareSource({
    disks: [
      sourceDisk({ slot: 'scsi0:0', path: '/srv/vm/web/web.vmdk' }),
      sourceDisk({ slot: 'scsi0:1', unit: 1, path: '/srv/vm/web/web_1.vmdk' }),
    ],
  });

  it('puts every disk on virtio as vda, vdb and maps the guest names', () => {
    const t = targetLayout(twoDisks, { ...layoutOpts, virtio: true });
    expect(t.disks.map((d) => [d.sourceDev, d.guestDev, d.xmlDev, d.bus, d.output])).toEqual([
      ['sda', 'vda', 'vda', 'virtio', '/srv/out/web-sda.qcow2'],
      ['sdb', 'vdb', 'vdb', 'virtio', '/srv/out/web-sdb.qcow2'],
    ]);
    expect(t.deviceMap).toEqual({ sda: 'vda', sdb: 'vdb' });
    expect(t.nics.map((n) => n.model)).toEqual(['virtio']);
  });

  it('--no-virtio: IDE disks hda, hdb in the XML, seen as sda, sdb by libata (no remap); e1000', () => {
    const t = targetLayout(twoDisks, {
      ...layoutOpts,
      outputFormat: 'raw',
      virtio: false,
      name: 'web2',
    });
    expect(t.name).toBe('web2');
    expect(t.disks.map((d) => [d.guestDev, d.xmlDev, d.bus, d.output, d.outputFormat])).toEqual([
      ['sda', 'hda', 'ide', '/srv/out/web2-sda.img', 'raw'],
      ['sdb', 'hdb', 'ide', '/srv/out/web2-sdb.img', 'raw'],
    ]);
    expect(t.deviceMap).toEqual({});
    expect(t.nics.map((n) => n.model)).toEqual(['e1000']);
  });

  it('--no-virtio: a Xen guest keeps a remap xvda → sda', () => {
    const t = targetLayout(xenPvSource(), { ...layoutOpts, virtio: false });
    expect(t.deviceMap).toEqual({ xvda: 'sda' });
  });

  it('--no-virtio refuses more than 4 disks (IDE takes 4); 4 is fine', () => {
    const disks = (n: number) =>
      Array.from({ length: n }, (_, i) => sourceDisk({ slot: `scsi0:${i}`, unit: i }));
    expect(
      targetLayout(vmwareSource({ disks: disks(4) }), { ...layoutOpts, virtio: false }).disks,
    ).toHaveLength(4);
    const five = vmwareSource({ disks: disks(5) });
    expect(() => targetLayout(five, { ...layoutOpts, virtio: false })).toThrow(UsageError);
    expect(() => targetLayout(five, { ...layoutOpts, virtio: false })).toThrow(
      '--no-virtio: the guest has 5 disks but IDE takes at most 4',
    );
    expect(targetLayout(five, { ...layoutOpts, virtio: true }).disks.at(-1)?.xmlDev).toBe('vde');
  });

  it('IDE-only guests: hda.. and the libata names sda.. both map to the target', () => {
    const ide = vmwareSource({
      disks: [
        sourceDisk({ slot: 'ide0:0', bus: 'ide', controller: 'ide', controllerIndex: 0, unit: 0 }),
        sourceDisk({ slot: 'ide1:0', bus: 'ide', controller: 'ide', controllerIndex: 1, unit: 0 }),
      ],
    });
    expect(targetLayout(ide, { ...layoutOpts, virtio: true }).deviceMap).toEqual({
      hda: 'vda',
      hdc: 'vdb',
      sda: 'vda',
      sdb: 'vdb',
    });
    // On IDE again (--no-virtio) the libata names stay.
    expect(targetLayout(ide, { ...layoutOpts, virtio: false }).deviceMap).toEqual({
      hda: 'sda',
      hdc: 'sdb',
    });
  });

  it('IDE beside SCSI: the sd order is not guessed (no libata alias)', () => {
    const mixed = vmwareSource({
      disks: [
        sourceDisk({ slot: 'scsi0:0' }),
        sourceDisk({ slot: 'ide0:0', bus: 'ide', controller: 'ide', controllerIndex: 0, unit: 0 }),
      ],
    });
    expect(targetLayout(mixed, { ...layoutOpts, virtio: true }).deviceMap).toEqual({
      sda: 'vda',
      hda: 'vdb',
    });
  });

  it('Xen HVM: the PV names xvda.. map too (PV drivers unplug the emulated disks)', () => {
    const hvm = xenPvSource({
      hypervisor: 'xen-fv',
      xenPv: undefined,
      disks: [
        sourceDisk({ slot: 'hda', bus: 'ide', controller: 'ide', controllerIndex: 0, unit: 0 }),
      ],
    });
    expect(targetLayout(hvm, { ...layoutOpts, virtio: true }).deviceMap).toEqual({
      hda: 'vda',
      sda: 'vda',
      xvda: 'vda',
    });
    expect(targetLayout(xenPvSource(), { ...layoutOpts, virtio: true }).deviceMap).toEqual({
      xvda: 'vda',
    });
  });

  it('maps 27 disks to vda..vdz, vdaa', () => {
    const disks = Array.from({ length: 27 }, (_, i) => sourceDisk({ slot: `scsi0:${i}`, unit: i }));
    const t = targetLayout(vmwareSource({ disks }), { ...layoutOpts, virtio: true });
    expect(t.disks.at(25)?.guestDev).toBe('vdz');
    expect(t.disks.at(26)?.guestDev).toBe('vdaa');
    expect(t.deviceMap.sdaa).toBe('vdaa');
    expect(t.disks.at(26)?.output).toBe('/srv/out/web-sdaa.qcow2');
  });
});

describe('network mappings', () => {
  const nics: SourceNic[] = [
    { mac: '00:50:56:aa:bb:01', model: 'vmxnet3', network: 'VM Network', networkKind: 'network' },
    { mac: '00:50:56:aa:bb:02', model: 'e1000', network: 'DMZ', networkKind: 'portgroup' },
    { model: 'vmxnet3', networkKind: 'unknown' },
  ];
  const source = vmwareSource({ nics });
  const nets = (...maps: ReturnType<typeof parseNetworkMapping>[]) =>
    targetLayout(source, { ...layoutOpts, virtio: true, networks: maps }).nics.map((n) => [
      n.kind,
      n.network,
    ]);

  it('parses IN:OUT and OUT; the last colon splits (names may hold colons)', () => {
    expect(parseNetworkMapping('VM Network:default', 'network')).toEqual({
      kind: 'network',
      from: 'VM Network',
      to: 'default',
    });
    expect(parseNetworkMapping('br0', 'bridge')).toEqual({
      kind: 'bridge',
      from: undefined,
      to: 'br0',
    });
    expect(parseNetworkMapping('a:b:lan', 'network')).toEqual({
      kind: 'network',
      from: 'a:b',
      to: 'lan',
    });
  });

  it.each(['', ':out', 'in:'])('refuses %j with a usage error naming the flag', (raw) => {
    expect(() => parseNetworkMapping(raw, 'bridge')).toThrow(UsageError);
    expect(() => parseNetworkMapping(raw, 'bridge')).toThrow(
      `--bridge ${raw}: expected IN:OUT or OUT`,
    );
  });

  it("no mapping: every NIC on libvirt's network 'default'", () => {
    expect(nets()).toEqual([
      ['network', 'default'],
      ['network', 'default'],
      ['network', 'default'],
    ]);
  });

  it('maps by source network name, by ethernetN, and the rest to the default OUT', () => {
    expect(
      nets(
        parseNetworkMapping('DMZ:dmz', 'network'),
        parseNetworkMapping('ethernet2:br-lab', 'bridge'),
        parseNetworkMapping('lan', 'network'),
      ),
    ).toEqual([
      ['network', 'lan'],
      ['network', 'dmz'],
      ['bridge', 'br-lab'],
    ]);
  });

  it('a named mapping wins over the default OUT whatever the order', () => {
    expect(
      nets(parseNetworkMapping('br0', 'bridge'), parseNetworkMapping('VM Network:prod', 'network')),
    ).toEqual([
      ['network', 'prod'],
      ['bridge', 'br0'],
      ['bridge', 'br0'],
    ]);
  });

  it('keeps source MACs and gives a NIC without one a stable 52:54:00 MAC', () => {
    const t = targetLayout(source, { ...layoutOpts, virtio: true });
    expect(t.nics.map((n) => n.mac).slice(0, 2)).toEqual([
      '00:50:56:aa:bb:01',
      '00:50:56:aa:bb:02',
    ]);
    expect(t.nics[2]?.mac).toBe('52:54:00:db:fd:33');
  });
});

describe('generatedMac', () => {
  it('is deterministic, in KVM OUI 52:54:00, and differs by name and index', () => {
    const a = generatedMac('web', 0);
    expect(a).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(generatedMac('web', 0)).toBe(a);
    expect(generatedMac('web', 1)).not.toBe(a);
    expect(generatedMac('db', 0)).not.toBe(a);
    // Pinned: a rerun (or a new release) must give the guest the MAC its interface pin names.
    expect(a).toBe('52:54:00:c5:07:b2');
  });
});
