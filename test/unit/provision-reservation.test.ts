/**
 * The reservation document (zod; errors name the field), VCL's names and paths, and the
 * generated domain XML (golden files).
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseUntrustedXml } from '../../src/formats/xml.js';
import {
  buildLoadDomainXml,
  generateDomainDefinition,
  generatedMac,
  loadRecordFrom,
  loadRecordValues,
  recordedHardware,
} from '../../src/provisioning/domain-xml.js';
import { DOMAIN_STATES } from '../../src/provisioning/libvirt/state.js';
import {
  consoleLogPath,
  conversionRecordFilePath,
  copyOnWriteFilePath,
  diskFileName,
  domainFileBaseName,
  domainName,
  domainXmlFilePath,
  isComputerDomain,
  masterImageFilePath,
  newImageName,
  repositorySearchPaths,
} from '../../src/provisioning/naming.js';
import { POWER_OF_STATE } from '../../src/provisioning/provisioner.js';
import {
  parseReservation,
  parseReservationJson,
  ReservationError,
  type ReservationInput,
} from '../../src/provisioning/reservation.js';

// biome-ignore lint/suspicious/noExplicitAny: documents edited field by field to make them wrong
type Loose = any;

const GOLDEN = path.join(import.meta.dirname, '../golden/provisioning');

/** The example document. */
function exampleDoc(): ReservationInput {
  return {
    reservation: { id: 3115, requestId: 3081 },
    computer: {
      id: 22,
      shortName: 'vm4-22',
      eth0Mac: '52:54:00:00:04:22',
      eth1Mac: '52:54:00:01:04:22',
    },
    image: {
      id: 3081,
      name: 'vmwarelinux-CentOS7Base64bitVM3081-v5',
      prettyName: 'CentOS 7 Base (64 bit VM)',
      revision: 5,
      osType: 'linux',
      minRamMiB: 1024,
      minCpus: 2,
      diskFormat: 'qcow2',
    },
    vmhost: {
      node: 'local',
      identity: null,
      knownHosts: null,
      libvirtUri: 'qemu:///system',
      datastorePath: '/var/lib/libvirt/images',
      vmPath: '/var/lib/libvirt/images',
      repositoryPath: '/install/repository',
      virtualSwitch0: 'default',
      virtualSwitch1: 'private',
      domainType: null,
    },
  };
}

function errorOf(doc: unknown): string {
  try {
    parseReservation(doc, 'res.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ReservationError);
    expect((e as ReservationError).code).toBe('RESERVATION_INVALID');
    return (e as Error).message;
  }
  throw new Error('the document was accepted');
}

describe('reservation document', () => {
  it('accepts the example and fills the defaults', () => {
    const r = parseReservation(exampleDoc());
    expect(r.postLoad).toEqual({ timeoutSeconds: 600, wait: true });
    expect(r.args).toEqual({});
    expect(r.computer.eth0Mac).toBe('52:54:00:00:04:22');
  });

  it.each([
    [
      'a missing field',
      (d: Loose) => delete d.vmhost.datastorePath,
      'res.json: vmhost.datastorePath: ',
    ],
    [
      'a wrong type',
      (d: Loose) => (d.image.revision = '5'),
      'image.revision: Invalid input: expected number',
    ],
    [
      'a relative path',
      (d: Loose) => (d.vmhost.vmPath = 'images'),
      'vmhost.vmPath: an absolute path',
    ],
    [
      'a ".." path',
      (d: Loose) => (d.vmhost.vmPath = '/var/../etc'),
      'vmhost.vmPath: no ".." component',
    ],
    [
      'an unsafe image name',
      (d: Loose) => (d.image.name = '../x'),
      'image.name: an image name: letters',
    ],
    [
      'a bad MAC',
      (d: Loose) => (d.computer.eth0Mac = '52:54:00'),
      'computer.eth0Mac: a MAC address',
    ],
    [
      'an unknown field',
      (d: Loose) => (d.vmhost.datastore = '/x'),
      'vmhost: Unrecognized key: "datastore"',
    ],
    [
      'a bad pattern',
      (d: Loose) => (d.postLoad = { pattern: '(' }),
      'postLoad.pattern: a regular expression',
    ],
    ['zero CPUs', (d: Loose) => (d.image.minCpus = 0), 'image.minCpus: Too small'],
    [
      'a bad domain type',
      (d: Loose) => (d.vmhost.domainType = 'xen'),
      'vmhost.domainType: Invalid option',
    ],
    [
      'a relative virtio-win path',
      (d: Loose) => (d.vmhost.virtioWinPath = 'virtio-win.iso'),
      'vmhost.virtioWinPath: an absolute path',
    ],
  ])('refuses %s, naming the field', (_what, change, expected) => {
    const d = exampleDoc();
    change(d);
    expect(errorOf(d)).toContain(expected);
  });

  it('names every wrong field at once', () => {
    const d = exampleDoc() as Loose;
    delete d.computer;
    d.image.minRamMiB = -1;
    const m = errorOf(d);
    expect(m).toContain('computer: Invalid input: expected object');
    expect(m).toContain('image.minRamMiB: Too small');
  });

  it('refuses a node URL with a password and one that is not ssh://', () => {
    const d = exampleDoc();
    d.vmhost.node = 'ssh://root:secret@h:22';
    const m = errorOf(d);
    expect(m).toContain('vmhost.node');
    expect(m).not.toContain('secret');
    d.vmhost.node = 'http://h';
    expect(errorOf(d)).toContain("vmhost.node 'http://h': only ssh:// URLs are supported");
  });

  it('refuses text that is not JSON, naming the source', () => {
    expect(() => parseReservationJson('{"reservation":', 'stdin')).toThrow(/^stdin: not JSON: /);
  });
});

describe("VCL's names and paths", () => {
  const r = parseReservation(exampleDoc());

  it('follows the rules of libvirt.pm', () => {
    expect(domainName(r)).toBe('vm4-22_CentOS7Base64bitVM_3081-v5');
    expect(domainFileBaseName(r)).toBe('vm4-22_3081-v5');
    expect(domainXmlFilePath(r)).toBe('/tmp/vcl/vm4-22_3081-v5.xml');
    expect(masterImageFilePath(r)).toBe(
      '/var/lib/libvirt/images/vmwarelinux-CentOS7Base64bitVM3081-v5.qcow2',
    );
    expect(copyOnWriteFilePath(r)).toBe('/var/lib/libvirt/images/vm4-22_3081-v5.qcow2');
    expect(consoleLogPath(r)).toBe(
      '/var/lib/libvirt/images/vm4-22_CentOS7Base64bitVM_3081-v5.console.log',
    );
    expect(newImageName({ ...r, image: { ...r.image, osName: 'vmwarelinux' } })).toBe(
      'vmwarelinux-CentOS7Base64bitVM3081-v5',
    );
    expect(repositorySearchPaths(r)).toEqual([
      '/install/repository/vmwarelinux-CentOS7Base64bitVM3081-v5/vmwarelinux-CentOS7Base64bitVM3081-v5*',
      '/install/repository/vmwarelinux-CentOS7Base64bitVM3081-v5*',
      '/var/lib/libvirt/images/vmwarelinux-CentOS7Base64bitVM3081-v5*',
    ]);
  });

  it("names each disk after the first of a master and of a COW image: '-disk<n>'", () => {
    expect(masterImageFilePath(r, r.image.name, 1)).toBe(
      '/var/lib/libvirt/images/vmwarelinux-CentOS7Base64bitVM3081-v5-disk2.qcow2',
    );
    expect(masterImageFilePath(r, 'other-v1', 2)).toBe(
      '/var/lib/libvirt/images/other-v1-disk3.qcow2',
    );
    expect(copyOnWriteFilePath(r, 1)).toBe('/var/lib/libvirt/images/vm4-22_3081-v5-disk2.qcow2');
    expect(isComputerDomain('vm4-22_3081-v5-disk2.qcow2', 'vm4-22')).toBe(true);
    expect(diskFileName('x-v1', 0)).toBe('x-v1');
    expect(() => diskFileName('x-v1', -1)).toThrow(RangeError);
    expect(conversionRecordFilePath(r)).toBe(
      '/var/lib/libvirt/images/vmwarelinux-CentOS7Base64bitVM3081-v5.conversion.json',
    );
  });

  it('keeps the domain name within 48 characters', () => {
    const long = {
      ...r,
      image: { ...r.image, prettyName: 'A very long pretty name of an image '.repeat(3) },
    };
    expect(domainName(long)).toHaveLength(48);
    expect(domainName(long)).toBe('vm4-22_AverylongprettynameofanimageAvery_3081-v5');
    const tight = { ...r, computer: { ...r.computer, shortName: 'c'.repeat(38) } };
    expect(domainName(tight)).toBe(`${'c'.repeat(38)}_3081-v5`);
    const huge = { ...r, computer: { ...r.computer, shortName: 'c'.repeat(49) } };
    expect(domainName(huge)).toBe('22');
    const over = { ...r, computer: { ...r.computer, shortName: 'c'.repeat(45) } };
    expect(domainName(over)).toBe('c'.repeat(45));
  });

  it("matches a computer's domains literally: vm4-2 never takes vm4-22's", () => {
    expect(isComputerDomain('vm4-22_x_1-v1', 'vm4-22')).toBe(true);
    expect(isComputerDomain('vm4-22:img', 'vm4-22')).toBe(true);
    expect(isComputerDomain('vm4-22_x_1-v1', 'vm4-2')).toBe(false);
    expect(isComputerDomain('vm4x22_x', 'vm4.22')).toBe(false);
    expect(isComputerDomain('vm4-22', 'vm4-22')).toBe(false);
  });

  it('maps every libvirt state to a power status', () => {
    expect(Object.keys(POWER_OF_STATE).sort()).toEqual([...DOMAIN_STATES].sort());
    expect(POWER_OF_STATE.running).toBe('on');
    expect(POWER_OF_STATE.paused).toBe('suspended');
    expect(POWER_OF_STATE['shut off']).toBe('off');
  });
});

describe('generated domain XML', () => {
  const r = parseReservation(exampleDoc());
  const record = {
    imageId: 3081,
    imageName: r.image.name,
    imageRevision: 5,
    computerId: 22,
    computerName: 'vm4-22',
    reservationId: 3115,
    loadedAt: '2026-01-01T00:00:00.000Z',
  };
  const inputs = {
    name: domainName(r),
    type: 'qemu' as const,
    disks: [{ path: copyOnWriteFilePath(r), format: 'qcow2' as const }],
    consoleLog: consoleLogPath(r),
    recorded: {},
  };

  it('virtio, two NICs with the MACs of the reservation, VNC on 127.0.0.1 (golden)', async () => {
    const def = generateDomainDefinition(r, inputs);
    def.uuid = '6f1c1c4e-0d7a-4a55-9a0e-111111111111';
    await expect(buildLoadDomainXml(def, record)).toMatchFileSnapshot(
      path.join(GOLDEN, 'load-virtio.xml'),
    );
  });

  it("the recorded XML's bus, NIC model and direct kernel boot; generated MACs (golden)", async () => {
    const recorded = recordedHardware(
      `<domain type='kvm'><os><type machine='pc-i440fx-7.2'>hvm</type><kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0</cmdline></os>
       <cpu><topology sockets='2' cores='2' threads='1'/></cpu>
       <devices><disk type='file' device='disk'><target dev='hda' bus='ide'/></disk>
       <interface type='network'><model type='e1000'/></interface></devices></domain>`,
      'recorded.xml',
    );
    expect(recorded).toEqual({
      diskCount: 1,
      diskBus: 'ide',
      nicModel: 'e1000',
      machine: 'pc',
      topology: { sockets: 2, cores: 2, threads: 1 },
      kernelBoot: { kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0' },
    });
    const noMacs = {
      ...r,
      computer: { ...r.computer, eth0Mac: null, eth1Mac: undefined },
      image: { ...r.image, minCpus: 6 },
    };
    const def = generateDomainDefinition(noMacs, { ...inputs, recorded });
    def.uuid = '6f1c1c4e-0d7a-4a55-9a0e-222222222222';
    expect(def.topology).toEqual({ sockets: 3, cores: 2, threads: 1 });
    expect(def.nics.map((n) => n.mac)).toEqual([
      generatedMac('vm4-22', 0),
      generatedMac('vm4-22', 1),
    ]);
    expect(def.nics[0]?.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    await expect(buildLoadDomainXml(def, record, recorded.kernelBoot)).toMatchFileSnapshot(
      path.join(GOLDEN, 'load-ide-kernel.xml'),
    );
  });

  it('gives a valid CPU topology for every vCPU count', () => {
    for (let n = 1; n <= 64; n++) {
      const t = generateDomainDefinition(
        { ...r, image: { ...r.image, minCpus: n } },
        inputs,
      ).topology;
      expect(t.sockets * t.cores * t.threads).toBe(n);
    }
  });

  it('leaves out the NIC of a switch that is not set', () => {
    const one = { ...r, vmhost: { ...r.vmhost, virtualSwitch1: null } };
    expect(generateDomainDefinition(one, inputs).nics.map((n) => n.source)).toEqual(['default']);
  });

  it("keeps the load's record in the metadata, and reads it back", () => {
    const xml = buildLoadDomainXml(generateDomainDefinition(r, inputs), record);
    const meta = (parseUntrustedXml(xml, 'x').domain as Loose).metadata['v2vload:provisioning'];
    expect(meta['@_xmlns:v2vload']).toBe('https://v2v-load.dev/xmlns/provisioning/1');
    expect(meta['v2vload:imageName']).toBe(r.image.name);
    expect(loadRecordFrom(loadRecordValues({ ...record, postLoadAt: 'now' }))).toEqual({
      ...record,
      postLoadAt: 'now',
    });
    expect(loadRecordFrom({})).toBeUndefined();
  });
});
