import { createRunContainer } from '../../di/composition-root.js';
import { TOKENS } from '../../di/tokens.js';
import { ACCELS, type Accel, DEFAULT_DOCTOR_OPTIONS } from '../../doctor/checks.js';
import { type Doctor, formatDoctorReport } from '../../doctor/doctor.js';
import { ExitCode } from '../../errors.js';
import { parseSize } from '../../util/size.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { nodeSpecFrom, withNodeOptions } from '../node-options.js';

export function doctorCommand(ctx: CliContext) {
  return defineCommand({
    command: 'doctor',
    describe: 'check that a node can convert and run guests (tools, libvirtd, libguestfs, space)',
    builder: (y) =>
      withNodeOptions(y)
        .option('connect', {
          alias: 'c',
          type: 'string',
          default: DEFAULT_DOCTOR_OPTIONS.connect,
          describe: 'libvirt connection URI on the node',
        })
        .option('dir', {
          type: 'string',
          default: DEFAULT_DOCTOR_OPTIONS.dir,
          describe: 'directory whose free space to check (the datastore)',
        })
        .option('min-free', {
          type: 'string',
          default: '1G',
          describe: 'free space the directory needs',
        })
        .option('accel', {
          choices: ACCELS,
          default: 'auto' as Accel,
          describe: 'accelerator for the libguestfs appliance: auto tries KVM, then TCG',
        })
        .option('libguestfs', {
          type: 'boolean',
          default: true,
          describe: 'launch the libguestfs appliance (10-60 s); --no-libguestfs skips it',
        })
        .example('$0 doctor', 'check this machine')
        .example(
          '$0 doctor --host ssh://root@vmhost1 --known-hosts ./known_hosts --json',
          'check a remote node, JSON output',
        ),
    handler: async (args) => {
      const minFreeBytes = parseSize(args['min-free'], '--min-free');
      const run = await createRunContainer(ctx.root, nodeSpecFrom(args));
      const doctor = run.resolve<Doctor>(TOKENS.Doctor);
      const report = await doctor.run({
        connect: args.connect,
        dir: args.dir,
        minFreeBytes,
        accel: args.accel,
        libguestfs: args.libguestfs,
      });
      ctx.out(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
      const unreachable = report.checks.find((c) => c.name === 'node' && !c.ok);
      ctx.setExit(
        report.ok ? ExitCode.Ok : unreachable ? ExitCode.NodeUnreachable : ExitCode.Failure,
      );
    },
  });
}
