/**
 * An invalid or unreadable configuration: one line per problem, never a stack trace. Apart from
 * the schema so that the CLI's top-level catch can know it without loading zod (P5: `--help`).
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}
