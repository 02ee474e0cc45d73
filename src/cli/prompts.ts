import { CancelledError } from './errors.js';

/**
 * The prompts `init` and `passwd` ask, behind one seam so tests can answer them. Ctrl-C at any
 * prompt becomes a CancelledError (exit 130).
 */
export interface Prompts {
  input(message: string, defaultValue?: string, validate?: (value: string) => string | true): Promise<string>;
  password(message: string, validate?: (value: string) => string | true): Promise<string>;
  confirm(message: string, defaultValue?: boolean): Promise<boolean>;
}

function cancelled(error: unknown): never {
  if (error instanceof Error && error.name === 'ExitPromptError') throw new CancelledError();
  throw error;
}

export function createPrompts(): Prompts {
  return {
    async input(message, defaultValue, validate) {
      const { input } = await import('@inquirer/prompts');
      return input({ message, default: defaultValue, validate: validate ?? (() => true) }).catch(cancelled);
    },
    async password(message, validate) {
      const { password } = await import('@inquirer/prompts');
      return password({ message, mask: '*', validate: validate ?? (() => true) }).catch(cancelled);
    },
    async confirm(message, defaultValue) {
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message, default: defaultValue }).catch(cancelled);
    },
  };
}
