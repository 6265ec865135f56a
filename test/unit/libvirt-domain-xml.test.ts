/** The typed domain definition → XML builder, and the parsed view of libvirt's XML. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildDomainXml,
  type DomainDefinition,
  describeDomainXml,
} from '../../src/provisioning/libvirt/domain-xml-types.js';

const GOLDEN = path.resolve(import.meta.dirname, '../golden/virsh');

const def: DomainDefinition = {
  type: 'qemu',
  name: 'v2vl3-tiny',
  memoryKiB: 262144,
  vcpus: 1,
  os: {
    type: 'hvm',
    arch: 'x86_64',
    kernel: '/var/tmp/k/vmlinuz',
    initrd: '/var/tmp/k/initrd.cpio',
    cmdline: 'console=ttyS0',
  },
  features: { acpi: true, apic: true },
  onPoweroff: 'destroy',
  onReboot: 'restart',
  disks: [
    {
      device: 'disk',
      source: '/var/tmp/d/disk.qcow2',
      format: 'qcow2',
      target: 'vda',
      bus: 'virtio',
    },
  ],
  interfaces: [{ network: 'isolated', mac: '52:54:00:12:34:56', model: 'virtio' }],
  serials: [{ type: 'file', path: '/var/tmp/d/console.log', append: true }],
};

describe('buildDomainXml', () => {
  it('builds the XML of the tiny guest (golden)', async () => {
    await expect(buildDomainXml(def)).toMatchFileSnapshot(
      path.join(GOLDEN, 'built-tiny-domain.xml'),
    );
  });

  it('escapes hostile names and text; round-trips through the parser', () => {
    const name = `a <b> & 'c' "d" ;e`;
    const xml = buildDomainXml({ ...def, name, description: '</description><evil/>' });
    expect(xml).not.toContain('<evil/>');
    const parsed = describeDomainXml(xml, 'built');
    expect(parsed.name).toBe(name);
    expect(parsed.description).toBe('</description><evil/>');
    expect(parsed).toMatchObject({
      type: 'qemu',
      memoryKiB: 262144,
      currentMemoryKiB: 262144,
      vcpus: 1,
    });
    expect(parsed.disks).toEqual([
      {
        device: 'disk',
        target: 'vda',
        bus: 'virtio',
        source: '/var/tmp/d/disk.qcow2',
        format: 'qcow2',
      },
    ]);
    expect(parsed.interfaces).toEqual([
      { type: 'network', mac: '52:54:00:12:34:56', source: 'isolated' },
    ]);
  });
});

describe('describeDomainXml of libvirt output', () => {
  it('reads the domain inside a real snapshot-dumpxml', () => {
    const xml = fs.readFileSync(path.join(GOLDEN, 'snapshot-dumpxml-shutoff.xml'), 'utf8');
    const inner = xml.slice(xml.indexOf('<domain '), xml.indexOf('</domain>') + '</domain>'.length);
    const d = describeDomainXml(inner, 'snapshot');
    expect(d).toMatchObject({
      type: 'qemu',
      name: 'v2vl3-probe',
      uuid: 'af85bfaa-b0a7-4288-93c8-c9aaaca5b5a5',
      memoryKiB: 262144,
      vcpus: 1,
      os: {
        type: 'hvm',
        arch: 'x86_64',
        machine: 'pc-i440fx-7.2',
        cmdline: 'console=ttyS0 panic=-1 quiet loglevel=1',
      },
    });
    expect(d.disks.map((x) => x.target)).toEqual(['vda']);
  });

  it('refuses hostile XML with a clear error; the canary is untouched', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'v2vl3-unit-'));
    try {
      const canary = path.join(tmp, 'canary');
      fs.writeFileSync(canary, 'CANARY');
      expect(() =>
        describeDomainXml(
          `<!DOCTYPE d [<!ENTITY x SYSTEM "file://${canary}">]><domain><name>&x;</name></domain>`,
          'x.xml',
        ),
      ).toThrow(/x.xml:1: XML entity declarations are not accepted/);
      expect(fs.readFileSync(canary, 'utf8')).toBe('CANARY');
      expect(fs.readdirSync(tmp)).toEqual(['canary']);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
