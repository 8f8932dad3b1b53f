// Writes src/config/muxvisor.schema.json from the zod schema:
//   npx tsx src/config/generate-schema.ts
// test/config.test.ts fails when the shipped file is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from './load.ts';

export const SCHEMA_FILE = fileURLToPath(new URL('./muxvisor.schema.json', import.meta.url));

export function schemaFileText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, schemaFileText());
  console.log(`wrote ${SCHEMA_FILE}`);
}
