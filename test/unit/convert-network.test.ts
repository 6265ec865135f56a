/** Keeping the guest's network identity: configured interfaces found, pinned to their MACs. */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Plan } from '../../src/convert/plan.js';
import { DebianGuestOs } from '../../src/guestos/debian.js';
import {
  compareIfaceNames,
  configuredInterfaces,
  parseIfupdown,
  parseNetworkd,
  parseNmConnection,
  pinInterfaces,
} from '../../src/guestos/linux-network.js';
import type { SourceNic } from '../../src/metadata/model.js';
import {
  conversionContext,
  debianInspection,
  MemGuest,
  planText,
  vmwareSource,
} from '../harness/mem-guest.js';

const GOLDEN = path.join(import.meta.dirname, '../golden/convert/network');
const F = '/etc/network/interfaces';

describe('parseIfupdown', () => {
  it('a static ens192 with its address; lo ignored', () => {
    const text = `# The loopback network interface
auto lo
iface lo inet loopback

allow-hotplug ens192
iface ens192 inet static
	address 192.168.10.5/24
	gateway 192.168.10.1
	dns-nameservers 192.168.10.1
`;
    expect(parseIfupdown(text, F)).toEqual([
      { name: 'ens192', addresses: ['192.168.10.5/24'], tool: 'ifupdown', file: F },
    ]);
  });

  it('dhcp, several interfaces, inet6 stanzas merged, comments and keywords between stanzas', () => {
    const text = `auto ens192 ens224
iface ens192 inet dhcp
# iface ens256 inet static
#   address 10.9.9.9
iface ens224 inet static
    address 10.0.0.5
    netmask 255.255.255.0
iface ens224 inet6 static
    address 2001:db8::5/64
auto eth1
    address 172.16.0.1
iface eth1 inet manual
`;
    expect(parseIfupdown(text, F)).toEqual([
      { name: 'ens192', addresses: [], tool: 'ifupdown', file: F },
      { name: 'ens224', addresses: ['10.0.0.5', '2001:db8::5/64'], tool: 'ifupdown', file: F },
      { name: 'eth1', addresses: [], tool: 'ifupdown', file: F },
    ]);
  });

  it('bridges, bonds and VLANs give the NICs under them; an alias gives its NIC its address', () => {
    const text = `iface ens192 inet manual
iface br0 inet static
    bridge_ports ens192
    address 10.0.0.2/24
iface bond0 inet static
    bond-slaves ens224 ens256
    bond-mode active-backup
    address 10.1.0.2/24
iface ens161.100 inet static
    address 10.2.0.2/24
iface vlan200 inet static
    vlan-raw-device ens193
iface eth0 inet static
    address 10.3.0.2/24
iface eth0:1 inet static
    address 10.3.0.3/24
iface br1 inet manual
    bridge-ports none
`;
    expect(parseIfupdown(text, F).map((c) => [c.name, ...c.addresses])).toEqual([
      ['ens192'],
      ['ens224'],
      ['ens256'],
      ['ens161'],
      ['ens193'],
      ['eth0', '10.3.0.2/24', '10.3.0.3/24'],
    ]);
  });
});

describe('parseNetworkd', () => {
  const f = '/etc/systemd/network/10-ens192.network';

  it('one exact Match Name, with Network and [Address] addresses', () => {
    const text = `[Match]
Name=ens192

[Network]
Address=192.168.10.5/24
Gateway=192.168.10.1
Address=2001:db8::5/64

[Address]
Address=192.168.10.6/24
`;
    expect(parseNetworkd(text, f)).toEqual([
      {
        name: 'ens192',
        addresses: ['192.168.10.5/24', '2001:db8::5/64', '192.168.10.6/24'],
        tool: 'systemd-networkd',
        file: f,
      },
    ]);
  });

  it.each([
    ['a glob', '[Match]\nName=en*\n[Network]\nDHCP=yes\n'],
    ['two names', '[Match]\nName=ens192 ens224\n'],
    ['a MAC match', '[Match]\nMACAddress=00:50:56:aa:bb:01\n'],
    ['lo', '[Match]\nName=lo\n'],
  ])('names no single interface with %s', (_what, text) => {
    expect(parseNetworkd(text, f)).toEqual([]);
  });
});

describe('parseNmConnection', () => {
  const f = '/etc/NetworkManager/system-connections/ens192.nmconnection';

  it('the interface-name, with ipv4 and ipv6 addresses (gateway dropped)', () => {
    const text = `[connection]
id=Wired connection 1
uuid=0b1f6c5e-8c3a-4b9e-9f5a-0e0f1a2b3c4d
type=ethernet
interface-name=ens192

[ipv4]
address1=192.168.10.5/24,192.168.10.1
address2=192.168.10.6/24
method=manual

[ipv6]
address1=2001:db8::5/64
method=manual
`;
    expect(parseNmConnection(text, f)).toEqual([
      {
        name: 'ens192',
        addresses: ['192.168.10.5/24', '192.168.10.6/24', '2001:db8::5/64'],
        tool: 'NetworkManager',
        file: f,
      },
    ]);
  });

  it.each([
    ['no interface-name', '[connection]\ntype=ethernet\n'],
    ['a bridge', '[connection]\ntype=bridge\ninterface-name=br0\n'],
    ['a VLAN', '[connection]\ntype=vlan\ninterface-name=ens192.100\n'],
  ])('binds no NIC with %s', (_what, text) => {
    expect(parseNmConnection(text, f)).toEqual([]);
  });

  it('a bridge port connection is a NIC', () => {
    expect(
      parseNmConnection(
        '[connection]\ntype=802-3-ethernet\ninterface-name=ens224\nmaster=br0\n',
        f,
      ),
    ).toEqual([{ name: 'ens224', addresses: [], tool: 'NetworkManager', file: f }]);
  });
});

describe('compareIfaceNames', () => {
  it('sorts numerically', () => {
    expect(['eth10', 'ens224', 'eth2', 'ens192'].sort(compareIfaceNames)).toEqual([
      'ens192',
      'ens224',
      'eth2',
      'eth10',
    ]);
  });
});

/** A guest with every kind of network configuration. */
function mixedGuest(extra: Record<string, string> = {}): MemGuest {
  return new MemGuest({
    '/etc/network/interfaces':
      'source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\nallow-hotplug ens192\niface ens192 inet static\n  address 192.168.10.5/24\n',
    '/etc/network/interfaces.d/ens224':
      'auto ens224\niface ens224 inet static\n  address 10.0.0.5/24\n',
    '/etc/systemd/network/20-ens192.network':
      '[Match]\nName=ens192\n[Network]\nAddress=192.168.10.5/24\nAddress=192.168.10.7/24\n',
    '/etc/systemd/network/30-br9.netdev': '[NetDev]\nName=br9\nKind=bridge\n',
    '/etc/systemd/network/30-br9.network': '[Match]\nName=br9\n[Network]\nAddress=10.9.0.1/24\n',
    '/etc/systemd/network/README': '[Match]\nName=eth7\n',
    '/etc/NetworkManager/system-connections/ens256.nmconnection':
      '[connection]\ntype=ethernet\ninterface-name=ens256\n[ipv4]\naddress1=172.16.0.5/16\n',
    ...extra,
  });
}

describe('configuredInterfaces', () => {
  it('reads ifupdown (with interfaces.d), networkd (.network, not .netdev names) and NM keyfiles', async () => {
    expect(await configuredInterfaces(new Plan(mixedGuest()))).toEqual([
      {
        name: 'ens192',
        addresses: ['192.168.10.5/24', '192.168.10.7/24'],
        tool: 'ifupdown',
        file: '/etc/network/interfaces',
      },
      {
        name: 'ens224',
        addresses: ['10.0.0.5/24'],
        tool: 'ifupdown',
        file: '/etc/network/interfaces.d/ens224',
      },
      {
        name: 'ens256',
        addresses: ['172.16.0.5/16'],
        tool: 'NetworkManager',
        file: '/etc/NetworkManager/system-connections/ens256.nmconnection',
      },
    ]);
  });

  it('reads through the plan: a file an earlier module wrote counts', async () => {
    const plan = new Plan(new MemGuest());
    await plan.write('/etc/network/interfaces.d/eth3', 'iface eth3 inet dhcp\n', 'test', 'why');
    expect((await configuredInterfaces(plan)).map((c) => c.name)).toEqual(['eth3']);
  });

  it('finds none in a guest without network configuration', async () => {
    expect(
      await configuredInterfaces(new Plan(new MemGuest({ '/etc/hostname': 'web\n' }))),
    ).toEqual([]);
  });
});

describe('pinInterfaces', () => {
  const macs = ['00:50:56:aa:bb:01', '00:50:56:aa:bb:02', '00:50:56:aa:bb:03'];

  it('systemd udev: one .link file per interface, names paired with NICs in order (golden)', async () => {
    const plan = new Plan(mixedGuest({ '/lib/systemd/systemd-udevd': '' }));
    const ids = await pinInterfaces(plan, macs, 'guestos/debian');
    expect(ids).toEqual([
      {
        name: 'ens192',
        mac: macs[0],
        newName: 'ens192',
        addresses: ['192.168.10.5/24', '192.168.10.7/24'],
        tool: 'ifupdown',
        pinnedBy: '/etc/systemd/network/10-v2v-load-ens192.link',
      },
      {
        name: 'ens224',
        mac: macs[1],
        newName: 'ens224',
        addresses: ['10.0.0.5/24'],
        tool: 'ifupdown',
        pinnedBy: '/etc/systemd/network/10-v2v-load-ens224.link',
      },
      {
        name: 'ens256',
        mac: macs[2],
        newName: 'ens256',
        addresses: ['172.16.0.5/16'],
        tool: 'NetworkManager',
        pinnedBy: '/etc/systemd/network/10-v2v-load-ens256.link',
      },
    ]);
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'pin-systemd-link.txt'));
    expect(plan.warnings).toEqual([]);
  });

  it('/usr/lib/systemd/systemd-udevd counts as systemd udev too', async () => {
    const plan = new Plan(mixedGuest({ '/usr/lib/systemd/systemd-udevd': '' }));
    await pinInterfaces(plan, macs, 'guestos/rhel');
    expect(plan.actions.map((a) => (a.kind === 'write-file' ? a.path : a.kind))).toEqual([
      '/etc/systemd/network/10-v2v-load-ens192.link',
      '/etc/systemd/network/10-v2v-load-ens224.link',
      '/etc/systemd/network/10-v2v-load-ens256.link',
    ]);
  });

  it('without systemd udev: one udev rules file (golden)', async () => {
    const plan = new Plan(mixedGuest());
    const ids = await pinInterfaces(plan, macs, 'guestos/debian');
    expect(ids.map((i) => i.pinnedBy)).toEqual(
      Array(3).fill('/etc/udev/rules.d/70-v2v-load-net.rules'),
    );
    expect(plan.actions).toHaveLength(1);
    await expect(planText(plan)).toMatchFileSnapshot(path.join(GOLDEN, 'pin-udev-rules.txt'));
  });

  it('more configured names than NICs: the extra ones are warned about, not pinned', async () => {
    const plan = new Plan(mixedGuest({ '/lib/systemd/systemd-udevd': '' }));
    const ids = await pinInterfaces(plan, macs.slice(0, 2), 'guestos/debian');
    expect(ids.map((i) => i.name)).toEqual(['ens192', 'ens224']);
    expect(plan.warnings).toEqual([
      'interface ens256 (/etc/NetworkManager/system-connections/ens256.nmconnection) has no NIC on the target: the guest has 2 NIC(s)',
    ]);
    expect(plan.actions).toHaveLength(2);
  });

  it('no configuration: nothing pinned, nothing written', async () => {
    const plan = new Plan(new MemGuest({ '/lib/systemd/systemd-udevd': '' }));
    expect(await pinInterfaces(plan, macs, 'guestos/debian')).toEqual([]);
    expect(plan.actions).toEqual([]);
  });
});

describe('keepNetworkIdentity', () => {
  it("pins with the target NICs' MACs (kept from the source, generated when it had none)", async () => {
    const nics: SourceNic[] = [
      { mac: '00:50:56:aa:bb:01', model: 'vmxnet3', network: 'VM Network', networkKind: 'network' },
      { model: 'e1000', networkKind: 'unknown' },
    ];
    const ctx = conversionContext(vmwareSource({ nics }), debianInspection());
    const plan = new Plan(
      new MemGuest({
        '/etc/network/interfaces':
          'iface ens192 inet static\n address 10.0.0.5/24\niface ens224 inet dhcp\n',
        '/lib/systemd/systemd-udevd': '',
      }),
    );
    const ids = await new DebianGuestOs().keepNetworkIdentity(plan, ctx);
    expect(ids.map((i) => [i.name, i.mac])).toEqual([
      ['ens192', '00:50:56:aa:bb:01'],
      ['ens224', ctx.target.nics[1]?.mac],
    ]);
    expect(ctx.target.nics[1]?.mac).toMatch(/^52:54:00:/);
  });
});
