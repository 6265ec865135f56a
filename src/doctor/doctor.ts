import { inject, injectable } from 'tsyringe';
import { TOKENS } from '../di/tokens.js';
import type { Logger } from '../log/logger.js';
import type { Node } from '../node/node.js';
import type { DomainType } from '../provisioning/libvirt/domain-xml-types.js';
import {
  ALL_CHECKS,
  type Check,
  type CheckResult,
  DEFAULT_DOCTOR_OPTIONS,
  type DoctorOptions,
} from './checks.js';

/** The result of `v2v-load doctor`. */
export interface DoctorReport {
  node: string;
  /** True when every required check passed. */
  ok: boolean;
  /** 'kvm' or 'qemu': the libvirt domain type guests on this node should get. */
  domainType: DomainType | undefined;
  checks: CheckResult[];
}

/** Checks that a node can do v2v-load's work. */
@injectable()
export class Doctor {
  constructor(
    @inject(TOKENS.Node) private readonly node: Node,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {}

  async run(
    options: Partial<DoctorOptions> = {},
    checks: readonly Check[] = ALL_CHECKS,
  ): Promise<DoctorReport> {
    const opts = { ...DEFAULT_DOCTOR_OPTIONS, ...options };
    const facts: Record<string, unknown> = {};
    const results: CheckResult[] = [];
    let reachable = true;
    for (const check of checks) {
      if (!reachable) {
        results.push({
          name: check.name,
          ok: false,
          required: check.required,
          skipped: true,
          detail: 'skipped: the node is unreachable',
          durationMs: 0,
        });
        continue;
      }
      this.log.debug(`doctor: checking ${check.name} on ${this.node.name}`);
      const started = performance.now();
      const found = await check.run({ node: this.node, options: opts, facts });
      Object.assign(facts, found.facts);
      const result: CheckResult = {
        name: check.name,
        ok: found.ok,
        required: check.required,
        detail: found.detail,
        ...(found.hint ? { hint: found.hint } : {}),
        ...(found.skipped ? { skipped: true } : {}),
        durationMs: Math.round(performance.now() - started),
      };
      results.push(result);
      if (check.name === 'node' && !found.ok) reachable = false;
    }
    const accel =
      facts.accel ?? (facts.kvm === true ? 'kvm' : facts.kvm === false ? 'tcg' : undefined);
    return {
      node: this.node.name,
      ok: results.every((r) => r.ok || !r.required),
      domainType: accel === 'kvm' ? 'kvm' : accel === 'tcg' ? 'qemu' : undefined,
      checks: results,
    };
  }
}

/** The text form of a report, one line a check. */
export function formatDoctorReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = [`v2v-load doctor: ${report.node}`];
  for (const c of report.checks) {
    const mark = c.skipped ? 'skip' : c.ok ? 'ok' : c.required ? 'FAIL' : 'warn';
    lines.push(`  ${mark.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.hint && !c.ok) lines.push(`  ${''.padEnd(4)}  ${''.padEnd(width)}  hint: ${c.hint}`);
    else if (c.hint) lines.push(`  ${''.padEnd(4)}  ${''.padEnd(width)}  note: ${c.hint}`);
  }
  if (report.domainType) lines.push(`domain type for guests on this node: ${report.domainType}`);
  lines.push(report.ok ? 'all required checks passed' : 'some required checks FAILED');
  return `${lines.join('\n')}\n`;
}
