/**
 * The live libvirt reader runs virsh through the one runner (provisioning/libvirt/virsh.ts):
 * in the C locale, with libvirt's messages classified in one place. A stand-in `virsh` on PATH
 * answers in German unless LC_ALL=C, as a real one does on a German host.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { parseDomainDocument } from '../../src/formats/libvirt-domain-xml.js';
import type { Logger } from '../../src/log/logger.js';
import { parseDomainXml } from '../../src/metadata/libvirt/domain-xml.js';
import { LibvirtReader } from '../../src/metadata/libvirt/libvirt-reader.js';
import { LocalNode } from '../../src/node/local-node.js';
import { describeDomainXml } from '../../src/provisioning/libvirt/domain-xml-types.js';
import { LibvirtError } from '../../src/provisioning/libvirt/errors.js';
import { DEFAULT_LIBVIRT_URI } from '../../src/provisioning/libvirt/virsh.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const FAKE_VIRSH = `#!/bin/sh
printf '%s\\n' "LC_ALL=$LC_ALL $*" >> "$VIRSH_LOG"
case "$*" in
  *dumpxml*missing*)
    if [ "$LC_ALL" = C ]; then
      echo "error: failed to get domain 'missing'" >&2
    else
      echo "Fehler: Domain 'missing' konnte nicht gefunden werden" >&2
    fi
    exit 1 ;;
  *dumpxml*broken*)
    echo "error: internal error: cannot read the state" >&2
    exit 1 ;;
esac
exit 3
`;

describe('-i libvirt through the virsh runner', () => {
  let dir: string;
  let log: string;
  const saved = { PATH: process.env.PATH, LANG: process.env.LANG, LOG: process.env.VIRSH_LOG };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'v2v-load-virsh-'));
    fs.writeFileSync(path.join(dir, 'virsh'), FAKE_VIRSH, { mode: 0o755 });
    log = path.join(dir, 'virsh.log');
    process.env.PATH = `${dir}:${process.env.PATH}`;
    process.env.LANG = 'de_DE.UTF-8';
    process.env.VIRSH_LOG = log;
  });
  afterAll(() => {
    process.env.PATH = saved.PATH;
    if (saved.LANG === undefined) delete process.env.LANG;
    else process.env.LANG = saved.LANG;
    if (saved.LOG === undefined) delete process.env.VIRSH_LOG;
    else process.env.VIRSH_LOG = saved.LOG;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const read = (name: string) =>
    new LibvirtReader()
      .read([name], {}, { node: new LocalNode(), log: silent, tmpDir: dir })
      .catch((e: unknown) => e);

  it('an unknown domain is "no such domain", whatever the host language', async () => {
    const err = (await read('missing')) as MetadataError;
    expect(err).toBeInstanceOf(MetadataError);
    expect(err.message).toBe(
      `libvirt domain "missing" (${DEFAULT_LIBVIRT_URI}): no such domain: failed to get domain 'missing'`,
    );
    expect(err.cause).toBeInstanceOf(LibvirtError);
    expect(fs.readFileSync(log, 'utf8')).toContain(
      `LC_ALL=C -c ${DEFAULT_LIBVIRT_URI} dumpxml --inactive -- missing\n`,
    );
  });

  it('any other libvirt failure is a typed LibvirtError naming the operation and the URI', async () => {
    const err = (await read('broken')) as LibvirtError;
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err.kind).toBe('other');
    expect(err.message).toBe(
      `read domain "broken" (${DEFAULT_LIBVIRT_URI} on local) failed: internal error: cannot read the state`,
    );
  });
});

describe('one libvirt domain XML parser', () => {
  const NOT_A_DOMAIN = '<network><name>default</name></network>';

  it('the reader and the domain API refuse the same input with the same error', () => {
    const expected = 'n.xml: the root element is <network>, expected a libvirt <domain>';
    expect(() => parseDomainDocument(NOT_A_DOMAIN, 'n.xml')).toThrow(expected);
    expect(() =>
      parseDomainXml(NOT_A_DOMAIN, 'n.xml', { kind: 'libvirtxml', source: 'n.xml' }),
    ).toThrow(expected);
    // The domain API used to describe this as a domain named "".
    expect(() => describeDomainXml(NOT_A_DOMAIN, 'n.xml')).toThrow(expected);
    expect(() => describeDomainXml('<domain/><domain/>', 'two.xml')).toThrow(MetadataError);
  });

  it('both read the same element of the same parse', () => {
    const xml =
      "<domain type='kvm'><name>web</name><memory unit='MiB'>512</memory><vcpu>2</vcpu>" +
      "<os><type arch='x86_64'>hvm</type></os></domain>";
    const doc = parseDomainDocument(xml, 'w.xml');
    expect(doc.domain['@_type']).toBe('kvm');
    const described = describeDomainXml(xml, 'w.xml');
    expect(described.tree).toEqual(doc.tree);
    expect(described).toMatchObject({ type: 'kvm', name: 'web', memoryKiB: 512 * 1024, vcpus: 2 });
    const parsed = parseDomainXml(xml, 'w.xml', { kind: 'libvirtxml', source: 'w.xml' });
    expect(parsed.guest).toMatchObject({ name: 'web', memoryBytes: 512 * 1024 ** 2, vcpus: 2 });
  });
});
