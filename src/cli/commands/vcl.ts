/**
 * `v2v-load vcl <subroutine> --data FILE|-`: one subroutine of the VCL provisioning module
 * (VCL's libvirt.pm + KVM.pm) on the VM host of a reservation document. Prints one JSON object
 * `{"ok": bool, "result": ..., "error": {"code", "message", "hint"} | null}` and exits 0 when
 * ok, else 1 (130/143 when interrupted). contrib/vcl/lib/VCL/Module/Provisioning/v2vload.pm
 * calls it for VCL core.
 */
import * as fs from 'node:fs/promises';
import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { InterruptedError, V2vError } from '../../errors.js';
import { redactSecrets } from '../../log/redact.js';
import {
  copyOnWriteFilePath,
  domainFileBaseName,
  domainName,
  domainXmlDirectoryPath,
  domainXmlFilePath,
  masterImageDirectoryPath,
  masterImageFilePath,
  newImageName,
  repositorySearchPaths,
} from '../../provisioning/naming.js';
import type { VclProvisioner } from '../../provisioning/provisioner.js';
import {
  nodeSpecOf,
  parseReservationJson,
  type Reservation,
  ReservationError,
} from '../../provisioning/reservation.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';

type Sub = (p: () => VclProvisioner, res: Reservation) => unknown | Promise<unknown>;

function needDomain(res: Reservation, sub: string): string {
  const d = res.args.domainName;
  if (!d) throw new ReservationError(`${sub}: args.domainName: required`);
  return d;
}

/** Every subroutine, by VCL's name. Names and paths need no node. */
export const VCL_SUBROUTINES: Record<string, { node: boolean; run: Sub }> = {
  initialize: { node: true, run: (p, r) => p().initialize(r) },
  load: { node: true, run: (p, r) => p().load(r) },
  capture: { node: true, run: (p, r) => p().capture(r) },
  node_status: { node: true, run: (p, r) => p().nodeStatus(r) },
  does_image_exist: { node: true, run: (p, r) => p().doesImageExist(r) },
  get_image_size: { node: true, run: async (p, r) => (await p().getImageSize(r)).mib },
  get_image_size_bytes: { node: true, run: async (p, r) => (await p().getImageSize(r)).bytes },
  get_image_repository_search_paths: {
    node: false,
    run: (_p, r) => repositorySearchPaths(r, r.args.imageName ?? r.image.name),
  },
  power_status: { node: true, run: (p, r) => p().powerStatus(r) },
  power_on: { node: true, run: (p, r) => p().powerOn(r) },
  power_off: { node: true, run: (p, r) => p().powerOff(r) },
  power_reset: { node: true, run: (p, r) => p().powerReset(r) },
  post_maintenance_action: { node: true, run: (p, r) => p().postMaintenanceAction(r) },
  get_driver_name: { node: true, run: (p, r) => p().getDriverName(r) },
  get_domain_name: { node: false, run: (_p, r) => domainName(r) },
  get_domain_file_base_name: { node: false, run: (_p, r) => domainFileBaseName(r) },
  get_domain_xml_directory_path: { node: false, run: () => domainXmlDirectoryPath() },
  get_domain_xml_file_path: { node: false, run: (_p, r) => domainXmlFilePath(r) },
  get_master_image_directory_path: { node: false, run: (_p, r) => masterImageDirectoryPath(r) },
  get_master_image_file_path: {
    node: false,
    run: (_p, r) => masterImageFilePath(r, r.args.imageName ?? r.image.name),
  },
  get_copy_on_write_file_path: { node: false, run: (_p, r) => copyOnWriteFilePath(r) },
  get_new_image_name: { node: false, run: (_p, r) => newImageName(r) },
  delete_existing_domains: { node: true, run: (p, r) => p().deleteExistingDomains(r) },
  delete_domain: {
    node: true,
    run: (p, r) => p().deleteDomain(r, needDomain(r, 'delete_domain')),
  },
  generate_domain_xml: { node: true, run: (p, r) => p().generateDomainXml(r) },
  get_domain_info: { node: true, run: (p) => p().getDomainInfo() },
  get_domain_xml: {
    node: true,
    run: (p, r) => p().getDomainXml(needDomain(r, 'get_domain_xml')),
  },
  domain_exists: {
    node: true,
    run: (p, r) => p().domainExists(needDomain(r, 'domain_exists')),
  },
  get_snapshot_info: { node: true, run: (p, r) => p().getSnapshotInfo(r) },
  create_snapshot: { node: true, run: (p, r) => p().createSnapshot(r) },
  delete_snapshot: { node: true, run: (p, r) => p().deleteSnapshot(r) },
  find_repository_image_file_paths: {
    node: true,
    run: (p, r) => p().findRepositoryImageFilePaths(r),
  },
};

async function readData(file: string): Promise<{ text: string; source: string }> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return {
      text: Buffer.concat(chunks).toString('utf8'),
      source: 'the reservation document on stdin',
    };
  }
  try {
    return { text: await fs.readFile(file, 'utf8'), source: file };
  } catch (e) {
    throw new ReservationError(`--data ${file}: cannot read: ${(e as Error).message}`, {
      hint: 'give the reservation document as a file, or - for stdin',
    });
  }
}

function errorJson(e: unknown): { code: string; message: string; hint?: string } {
  if (e instanceof V2vError) {
    return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
  return { code: 'INTERNAL', message: redactSecrets(e instanceof Error ? e.message : String(e)) };
}

export function vclCommand(ctx: CliContext) {
  return defineCommand({
    command: 'vcl <subroutine>',
    describe: 'run one subroutine of the VCL provisioning module on a reservation (JSON out)',
    builder: (y) =>
      y
        .positional('subroutine', {
          type: 'string',
          demandOption: true,
          describe: `one of: ${Object.keys(VCL_SUBROUTINES).join(', ')}`,
        })
        .option('data', {
          type: 'string',
          // takes the next word even when it is "-" (stdin)
          nargs: 1,
          demandOption: true,
          describe: 'the reservation document (JSON): a file, or - for stdin',
        })
        .example('$0 vcl load --data reservation.json', 'load the image on the computer')
        .example('$0 vcl node_status --data - < reservation.json', 'is the computer READY?'),
    handler: async (args) => {
      const t0 = performance.now();
      let out: Record<string, unknown>;
      try {
        const sub = VCL_SUBROUTINES[args.subroutine];
        if (!sub) {
          throw new ReservationError(`unknown subroutine ${JSON.stringify(args.subroutine)}`, {
            hint: `one of: ${Object.keys(VCL_SUBROUTINES).join(', ')}`,
          });
        }
        const { text, source } = await readData(args.data);
        const res = parseReservationJson(text, source);
        let provisioner: VclProvisioner | undefined;
        if (sub.node) {
          const run = await createRunContainer(ctx.root, nodeSpecOf(res, source), {
            libvirtUri: res.vmhost.libvirtUri,
            allowedBackingDirs: [res.vmhost.datastorePath],
          });
          provisioner = run.resolve<VclProvisioner>(TOKENS.VclProvisioner);
        }
        const result = await sub.run(() => provisioner as VclProvisioner, res);
        out = { ok: true, result: result === undefined ? null : result, error: null };
        ctx.log.debug(
          `vcl ${args.subroutine}: ${Math.round(performance.now() - t0)} ms, ${provisioner?.nodeCommands ?? 0} node commands`,
        );
      } catch (e) {
        const err = ctx.scope.interruption ?? e;
        out = { ok: false, result: null, error: errorJson(err) };
        ctx.log.error(`vcl ${args.subroutine}: ${(err as Error).message}`);
        ctx.setExit(err instanceof InterruptedError ? err.exitStatus : 1);
      }
      ctx.out(`${JSON.stringify(out)}\n`);
    },
  });
}
