/**
 * Keeping a Linux guest's network identity: each configured interface (ifupdown,
 * systemd-networkd, NetworkManager) is pinned to its MAC so that on the new NIC model it comes
 * up with the same name, and so with the same static addresses.
 */
import type { InterfaceIdentity } from '../convert/modules.js';
import type { Plan } from '../convert/plan.js';

/** An interface a network configuration names. */
export interface ConfiguredInterface {
  name: string;
  addresses: string[];
  tool: 'ifupdown' | 'systemd-networkd' | 'NetworkManager';
  file: string;
}

/** ifupdown options that name the NICs under a bridge, a bond or a VLAN. */
const PORT_OPTIONS = [
  'bridge_ports',
  'bridge-ports',
  'bond-slaves',
  'bond_slaves',
  'vlan-raw-device',
  'vlan_raw_device',
];
/** ifupdown options that make an interface virtual (it has no NIC, so no MAC to pin). */
const VIRTUAL_OPTIONS = [...PORT_OPTIONS, 'bond-mode', 'bond_mode', 'ovs_type', 'ovs-type'];

/**
 * The NICs (not `lo`) an ifupdown `interfaces` file configures, with their static addresses.
 * Virtual interfaces are not NICs: a bridge, bond or VLAN gives the NICs under it instead
 * (`ens192.100` → ens192), and an alias's addresses are its NIC's (`eth0:1` → eth0).
 */
export function parseIfupdown(text: string, file: string): ConfiguredInterface[] {
  interface Stanza {
    name: string;
    addresses: string[];
    virtual: boolean;
    ports: string[];
  }
  const stanzas = new Map<string, Stanza>();
  let current: Stanza | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const words = line.split(/\s+/);
    const key = words[0] ?? '';
    if (key === 'iface') {
      const name = words[1] ?? '';
      if (name === 'lo' || !name) {
        current = undefined;
        continue;
      }
      current = stanzas.get(name) ?? { name, addresses: [], virtual: false, ports: [] };
      stanzas.set(name, current);
    } else if (['auto', 'allow-hotplug', 'mapping', 'source', 'source-directory'].includes(key)) {
      current = undefined;
    } else if (current && key === 'address' && words[1]) {
      current.addresses.push(words[1]);
    } else if (current && VIRTUAL_OPTIONS.includes(key)) {
      current.virtual = true;
      if (PORT_OPTIONS.includes(key)) {
        current.ports.push(
          ...words
            .slice(1)
            .filter((w) => /^[A-Za-z0-9_.-]+$/.test(w) && w !== 'none' && w !== 'all'),
        );
      }
    }
  }
  const out = new Map<string, ConfiguredInterface>();
  const add = (name: string, addresses: readonly string[]) => {
    if (name === 'lo') return;
    const c = out.get(name) ?? { name, addresses: [], tool: 'ifupdown' as const, file };
    c.addresses.push(...addresses.filter((a) => !c.addresses.includes(a)));
    out.set(name, c);
  };
  for (const s of stanzas.values()) {
    const nic = s.name.split(':')[0] as string;
    if (s.virtual || nic.includes('.')) {
      if (nic.includes('.')) add(nic.split('.')[0] as string, []);
      for (const p of s.ports) add(p.split('.')[0] as string, []);
      continue;
    }
    add(nic, s.addresses);
  }
  return [...out.values()];
}

function iniSections(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let cur = new Map<string, string[]>();
  sections.set('', cur);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      cur = sections.get(sec[1] as string) ?? new Map();
      sections.set(sec[1] as string, cur);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq).trim();
    const v = line.slice(eq + 1).trim();
    cur.set(k, [...(cur.get(k) ?? []), v]);
  }
  return sections;
}

/** The interface a systemd-networkd `.network` file matches by name (one exact name only). */
export function parseNetworkd(text: string, file: string): ConfiguredInterface[] {
  const s = iniSections(text);
  const names = (s.get('Match')?.get('Name') ?? []).flatMap((v) => v.split(/\s+/));
  const name = names.length === 1 ? names[0] : undefined;
  if (!name || /[*?[\]]/.test(name) || name === 'lo') return [];
  const addresses = [
    ...(s.get('Network')?.get('Address') ?? []),
    ...(s.get('Address')?.get('Address') ?? []),
  ];
  return [{ name, addresses, tool: 'systemd-networkd', file }];
}

/** The interface a NetworkManager keyfile binds to by name. */
export function parseNmConnection(text: string, file: string): ConfiguredInterface[] {
  const s = iniSections(text);
  const name = s.get('connection')?.get('interface-name')?.[0];
  if (!name || name === 'lo') return [];
  // Bridges, bonds, VLANs, tunnels have no NIC of their own (their ports have connections).
  const type = s.get('connection')?.get('type')?.[0];
  if (type !== undefined && type !== 'ethernet' && type !== '802-3-ethernet') return [];
  const addresses: string[] = [];
  for (const sec of ['ipv4', 'ipv6']) {
    for (const [k, vs] of s.get(sec) ?? []) {
      if (/^address\d*$/.test(k)) for (const v of vs) addresses.push(v.split(',')[0] as string);
    }
  }
  return [{ name, addresses, tool: 'NetworkManager', file }];
}

/** Every interface the guest's network configuration names, read through the plan. */
export async function configuredInterfaces(plan: Plan): Promise<ConfiguredInterface[]> {
  const found: ConfiguredInterface[] = [];
  const ifupdownFiles = ['/etc/network/interfaces'];
  for (const n of await plan.ls('/etc/network/interfaces.d')) {
    ifupdownFiles.push(`/etc/network/interfaces.d/${n}`);
  }
  for (const f of ifupdownFiles) {
    const t = await plan.read(f);
    if (t !== undefined) found.push(...parseIfupdown(t, f));
  }
  for (const dir of ['/etc/systemd/network']) {
    // Names a .netdev creates (bridges, bonds, VLANs) are not NICs.
    const netdevs = new Set<string>();
    for (const n of await plan.ls(dir)) {
      if (!n.endsWith('.netdev')) continue;
      const t = await plan.read(`${dir}/${n}`);
      for (const v of (t && iniSections(t).get('NetDev')?.get('Name')) || []) netdevs.add(v);
    }
    for (const n of await plan.ls(dir)) {
      if (!n.endsWith('.network')) continue;
      const t = await plan.read(`${dir}/${n}`);
      if (t === undefined) continue;
      found.push(...parseNetworkd(t, `${dir}/${n}`).filter((c) => !netdevs.has(c.name)));
    }
  }
  const nm = '/etc/NetworkManager/system-connections';
  for (const n of await plan.ls(nm)) {
    const t = await plan.read(`${nm}/${n}`);
    if (t !== undefined) found.push(...parseNmConnection(t, `${nm}/${n}`));
  }
  // One entry per name; addresses merged.
  const byName = new Map<string, ConfiguredInterface>();
  for (const c of found) {
    const had = byName.get(c.name);
    if (had) had.addresses.push(...c.addresses.filter((a) => !had.addresses.includes(a)));
    else byName.set(c.name, { ...c, addresses: [...c.addresses] });
  }
  return [...byName.values()];
}

/** Natural order of interface names: ens192 before ens224, eth2 before eth10. */
export function compareIfaceNames(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * Pairs configured interface names with the guest's MACs (in NIC order) and plans a pin for
 * each: a systemd .link file where udev is systemd's, else a udev rule.
 */
export async function pinInterfaces(
  plan: Plan,
  macs: readonly string[],
  by: string,
): Promise<InterfaceIdentity[]> {
  const configured = (await configuredInterfaces(plan)).sort((a, b) =>
    compareIfaceNames(a.name, b.name),
  );
  const systemdUdev =
    (await plan.exists('/lib/systemd/systemd-udevd')) ||
    (await plan.exists('/usr/lib/systemd/systemd-udevd'));
  const out: InterfaceIdentity[] = [];
  const rules: string[] = [];
  configured.forEach((c, i) => {
    const mac = macs[i];
    if (!mac) {
      plan.warn(
        `interface ${c.name} (${c.file}) has no NIC on the target: the guest has ${macs.length} NIC(s)`,
      );
      return;
    }
    out.push({
      name: c.name,
      mac,
      newName: c.name,
      addresses: c.addresses,
      tool: c.tool,
      pinnedBy: systemdUdev
        ? `/etc/systemd/network/10-v2v-load-${c.name}.link`
        : '/etc/udev/rules.d/70-v2v-load-net.rules',
    });
    rules.push(
      `SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="${mac}", NAME="${c.name}"`,
    );
  });
  for (const id of out) {
    if (!systemdUdev) break;
    await plan.write(
      id.pinnedBy,
      [
        '# Written by v2v-load: keep the name this interface had before conversion to KVM.',
        '[Match]',
        `MACAddress=${id.mac}`,
        '',
        '[Link]',
        `Name=${id.name}`,
        '',
      ].join('\n'),
      by,
      `keep interface name ${id.name} on MAC ${id.mac}`,
    );
  }
  if (!systemdUdev && rules.length) {
    await plan.write(
      '/etc/udev/rules.d/70-v2v-load-net.rules',
      `# Written by v2v-load: keep interface names across the conversion to KVM.\n${rules.join('\n')}\n`,
      by,
      'keep interface names on their MACs',
    );
  }
  return out;
}
