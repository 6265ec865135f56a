/**
 * The arguments that break naive quoting. The ones that would act if a shell interpreted them
 * point into `canaryDir` (the test's own temp dir): `canary` there must survive and `touched`
 * must never appear.
 */
export function hostileArgs(canaryDir: string): string[] {
  return [
    'plain',
    '',
    'two words',
    '  leading and trailing  ',
    "it's",
    "''",
    '"double"',
    `; rm -f ${canaryDir}/canary`,
    `$(touch ${canaryDir}/touched)`,
    `\`touch ${canaryDir}/touched\``,
    '`id`',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${...} is the point
    '${HOME}',
    '$HOME',
    'a\nb\n',
    '\t\r\n',
    '*',
    '?[a-z]*',
    '~root',
    '&&',
    '|',
    '>out',
    '<in',
    '\\',
    "\\'",
    '!event',
    '#comment',
    'héllo wörld',
    '日本語 ☃ 🎉',
    '-n',
    '--',
    '\u0001\u007f',
  ];
}
