// Tokenises every example spec (specs/) and every lint case (tests/lint/) with the TextMate
// grammar, through the engine VS Code runs (vscode-textmate + vscode-oniguruma), and checks
// the scopes that matter: keywords, strings, templates inside strings, JSONPaths, comments,
// numbers and durations. Run: `npm ci && npm test` in editors/vscode.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import textmate from "vscode-textmate";
import oniguruma from "vscode-oniguruma";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const require = createRequire(import.meta.url);

const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
const onigLib = oniguruma.loadWASM(wasm.buffer).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (text) => new oniguruma.OnigString(text),
}));
const grammarPath = join(here, "..", "syntaxes", "integ.tmLanguage.json");
const registry = new textmate.Registry({
  onigLib,
  loadGrammar: async (scope) =>
    scope === "source.integ"
      ? textmate.parseRawGrammar(readFileSync(grammarPath, "utf8"), grammarPath)
      : null,
});
const grammar = await registry.loadGrammar("source.integ");

function specs(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return specs(path);
      return name.endsWith(".integ") ? [path] : [];
    });
}

/** Every token of a file: its text, line, and scopes (outermost first). */
function tokenize(text) {
  const tokens = [];
  let stack = textmate.INITIAL;
  text.split("\n").forEach((line, index) => {
    const result = grammar.tokenizeLine(line, stack);
    for (const token of result.tokens) {
      tokens.push({
        text: line.slice(token.startIndex, token.endIndex),
        line: index + 1,
        scopes: token.scopes,
      });
    }
    stack = result.ruleStack;
  });
  return tokens;
}

const has = (token, prefix) => token.scopes.some((s) => s.startsWith(prefix));
const KEYWORDS = new Set(["integration", "connection", "trigger", "step", "fallback", "test",
  "environment", "alert", "defaults", "base_url", "auth", "retry", "on_error", "body", "query",
  "headers", "when", "expect", "mock", "rate_limit", "timeout", "paginate", "idempotency_key"]);

const failures = [];
const seen = new Map();
function fail(path, token, why) {
  failures.push(`${path}:${token.line}: \`${token.text}\` ${why} (scopes: ${token.scopes.join(" ")})`);
}
function count(scope) {
  seen.set(scope, (seen.get(scope) ?? 0) + 1);
}

/** What every tokenisation of a spec must hold. */
function check(path, tokens, examples) {
  for (const token of tokens) {
    const word = token.text.trim();
    const inString = has(token, "string.");
    const inComment = has(token, "comment.");
    for (const scope of token.scopes) count(scope.split(".").slice(0, 2).join("."));
    if (has(token, "meta.embedded")) count("template");
    if (inComment || !word) continue;
    if (inString) {
      if (/\{\{|\{%/.test(word) && !has(token, "punctuation.section.embedded.begin")) {
        fail(path, token, "opens a template but is not scoped as one");
      }
      continue;
    }
    // Outside strings and comments: a `#` can only start a comment.
    if (word.includes("#")) fail(path, token, "holds a # outside a comment");
    if (!examples) continue;
    if (KEYWORDS.has(word) && !has(token, "keyword.") && !has(token, "meta.jsonpath") && !has(token, "variable.other.target")
        && !has(token, "support.type.property-name")) {
      fail(path, token, "is a keyword not scoped as one");
    }
    if (word.startsWith("$") && !has(token, "meta.jsonpath")) fail(path, token, "starts a JSONPath outside one");
    if (/^(\d+(ms|s|m|h|d))+$/.test(word) && !has(token, "meta.jsonpath")
        && !has(token, "constant.numeric.duration")) {
      fail(path, token, "is a duration not scoped as one");
    }
    if (/^-?\d+(\.\d+)?$/.test(word) && !has(token, "constant.numeric")) fail(path, token, "is a number not scoped as one");
    if (/^(GET|POST|PUT|PATCH|DELETE)$/.test(word) && !has(token, "keyword.other.http-method")) {
      fail(path, token, "is an HTTP method not scoped as one");
    }
  }
}

/** A few tokens of the examples with the scope they must have. */
const EXPECTED = [
  ["specs/stripe_to_salesforce.integ", "integration", "keyword.other.declaration.integ"],
  ["specs/stripe_to_salesforce.integ", "stripe_to_salesforce", "entity.name.type.integ"],
  ["specs/stripe_to_salesforce.integ", "#", "punctuation.definition.comment.integ"],
  ["specs/stripe_to_salesforce.integ", "Every step retries", "comment.line.number-sign.integ"],
  ["specs/stripe_to_salesforce.integ", "500ms", "constant.numeric.duration.integ"],
  ["specs/stripe_to_salesforce.integ", "{{", "punctuation.section.embedded.begin.integ"],
  ["specs/stripe_to_salesforce.integ", "from_minor_units", "support.function.filter.integ"],
  ["specs/stripe_to_salesforce.integ", "$", "variable.language.jsonpath.root.integ"],
  ["specs/stripe_to_salesforce.integ", "opportunity", "variable.other.jsonpath.step.integ"],
  ["specs/stripe_to_salesforce.integ", "secret", "support.function.builtin.integ"],
  ["specs/stripe_to_salesforce.integ", "PATCH", "keyword.other.http-method.integ"],
  ["specs/stripe_to_salesforce.integ", "429", "constant.numeric.integ"],
  ["specs/stripe_to_salesforce.integ", "5xx", "constant.numeric.status.integ"],
  ["specs/stripe_to_salesforce.integ", '"""', "string.quoted.triple.integ"],
  ["specs/shopify_orders.integ", "{%-", "punctuation.section.embedded.begin.integ"],
  ["specs/weekly_report_to_slack.integ", "missed", "keyword.other.setting.integ"],
];

const tokensOf = new Map();
for (const [dir, examples] of [["specs", true], [join("tests", "lint"), false]]) {
  for (const path of specs(join(root, dir))) {
    const relative = path.slice(root.length + 1);
    const tokens = tokenize(readFileSync(path, "utf8"));
    tokensOf.set(relative, tokens);
    check(relative, tokens, examples);
  }
}
for (const [path, text, scope] of EXPECTED) {
  const tokens = tokensOf.get(path) ?? [];
  const found = tokens.filter((t) => t.text.trim() === text || (/ /.test(text) && t.text.includes(text)));
  if (!found.some((t) => t.scopes.includes(scope))) {
    failures.push(`${path}: no \`${text}\` scoped ${scope} (found: ${found.slice(0, 3).map((t) => t.scopes.join(" ")).join(" | ") || "none"})`);
  }
}
for (const scope of ["comment.line", "string.quoted", "template", "meta.jsonpath", "keyword.other",
  "constant.numeric", "keyword.operator", "support.function", "entity.name"]) {
  if (!(seen.get(scope) > 20)) failures.push(`only ${seen.get(scope) ?? 0} tokens scoped ${scope}`);
}

const files = tokensOf.size;
const tokens = [...tokensOf.values()].reduce((n, t) => n + t.length, 0);
if (failures.length) {
  console.error(failures.join("\n"));
  console.error(`${failures.length} failures in ${files} files`);
  process.exit(1);
}
console.log(`${tokens} tokens of ${files} specs scoped as expected`);
