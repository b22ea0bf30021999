// Runs before the native build: names the one apt command that installs what the addon links against.
import { existsSync } from 'node:fs';

const needs = [
  { file: '/usr/include/oneapi/dnnl/dnnl.hpp', pkg: 'libdnnl-dev' },
  { file: '/usr/include/node/node_api.h', pkg: 'nodejs' },
];
const missing = needs.filter((n) => !existsSync(n.file)).map((n) => n.pkg);
if (missing.length > 0) {
  console.error(`instructkit: missing system libraries (${missing.join(', ')}).`);
  console.error(`Install them with:  sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
