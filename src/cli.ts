#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { main } from './cli/main.js';

export { main, HELP, type CliIo } from './cli/main.js';
export {
  CLI_DEFAULTS,
  PRESETS,
  describeListenAddress,
  parseCli,
  parseGrace,
  parseListenAddress,
  parseMaxConnections,
  parseMaxUpstreamConnections,
  parseSocketMode,
  type CliCommand,
  type CliConfig,
  type CliParseResult,
  type ListenAddress,
} from './cli/args.js';

/**
 * Whether this module is the program node was started with (directly, or through the symlink npm
 * puts in `node_modules/.bin`), as opposed to imported by a test or another module.
 */
function isExecuted(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isExecuted()) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`docker-socket-filter: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
