// Parse one AsyncAPI document with the official parser and print its diagnostics as JSON lines.
//   node validate.mjs <source> < document.json
// <source> is where the document is served or stored (a URL or a path): relative $refs resolve against it.
// Exit code 1 when any diagnostic has error severity (0), 2 on bad usage, 0 otherwise.
import { Parser } from '@asyncapi/parser';

const ERROR = 0;
const source = process.argv[2];
if (!source) {
  console.error('usage: node validate.mjs <source> < document.json');
  process.exit(2);
}
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { diagnostics } = await new Parser().parse(Buffer.concat(chunks).toString('utf8'), { source });
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, path: d.path.join('.'), message: d.message }));
}
process.exit(diagnostics.some((d) => d.severity === ERROR) ? 1 : 0);
