#!/usr/bin/env bash
# Runs example calls against the vendors' own API descriptions, by hand (not in CI: it needs
# npm packages and HubSpot's OpenAPI file, which are not in this repository).
#
#   specs/check-against-vendors.sh HUBSPOT_CONTACTS_JSON
#
# HUBSPOT_CONTACTS_JSON is PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json of the
# HubSpot/HubSpot-public-api-spec-collection repository. What it checks:
# - hubspot_to_outreach: a polled contact's GET /crm/v3/objects/contacts/{id} against Prism on
#   HubSpot's description, with request validation (--errors);
# - github_releases: the two REST calls against Prism on GitHub's description (npm
#   @octokit/openapi), and the GraphQL document against GitHub's schema (npm
#   @octokit/graphql-schema).
# Later steps, whose APIs have no stand-in here, fail to connect: read the lines of the
# steps above. Prism's logs stay in the work folder it prints; its npm packages (about
# 500 MB) are removed at the end.
set -euo pipefail
hubspot_spec=$(realpath "${1:?usage: $0 HUBSPOT_CONTACTS_JSON}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
echo "work folder: $work"
cd "$work"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work/node_modules"' EXIT
npm install --silent --no-audit --no-fund @stoplight/prism-cli @octokit/openapi \
  @octokit/graphql-schema graphql@16 >/dev/null
(cd "$root" && cargo build --quiet)
integ="$root/target/debug/integ"
nowhere=http://127.0.0.1:9   # connection refused: the APIs without a stand-in

# GitHub's description, cut to the two calls of the example. GitHub serves these answers
# for `Accept: application/vnd.github+json`; its description lists only application/json.
node -e '
const d = require("./node_modules/@octokit/openapi/generated/api.github.com.deref.json");
const keep = ["/repos/{owner}/{repo}/releases", "/repos/{owner}/{repo}/compare/{basehead}"];
const paths = {};
for (const k of keep) {
  paths[k] = { get: d.paths[k].get };
  for (const r of Object.values(paths[k].get.responses))
    if (r.content && r.content["application/json"])
      r.content["application/vnd.github+json"] = r.content["application/json"];
}
require("fs").writeFileSync("github.json", JSON.stringify({ openapi: d.openapi, info: d.info, paths }));
'

node_modules/.bin/prism mock -d --errors -p 4010 "$hubspot_spec" >prism-hubspot.log 2>&1 & pids+=($!)
node_modules/.bin/prism mock -d --errors -p 4020 github.json >prism-github.log 2>&1 & pids+=($!)
for log in prism-hubspot.log prism-github.log; do
  for _ in $(seq 120); do grep -q 'Prism is listening' "$log" && break; sleep 1; done
done

printf 'HUBSPOT_TOKEN=t\nOUTREACH_CLIENT_ID=c\nOUTREACH_CLIENT_SECRET=s\nOUTREACH_REFRESH_TOKEN=r\nGITHUB_TOKEN=t\nSLACK_BOT_TOKEN=t\n' >secrets.env

echo "--- hubspot_to_outreach, a polled contact, against HubSpot's description"
HUBSPOT_URL=http://127.0.0.1:4010 OUTREACH_API_URL=$nowhere OUTREACH_TOKEN_URL=$nowhere/token \
  "$integ" run "$root/specs/hubspot_to_outreach.integ" --secrets secrets.env --state state.db \
  --input "$root/specs/fixtures/hubspot-contact-polled.json" || true

echo "--- github_releases, GitHub's sample release, against GitHub's description"
GITHUB_API_URL=http://127.0.0.1:4020 GITHUB_GRAPHQL_URL=$nowhere SLACK_API_URL=$nowhere \
  "$integ" run "$root/specs/github_releases.integ" --secrets secrets.env --state state.db \
  --input "$root/specs/fixtures/github-release-published-octokit.json" || true

echo "--- github_releases, the GraphQL document against GitHub's schema"
sed -n '/document """/,/"""$/p' "$root/specs/github_releases.integ" | sed '1d;$d' >pulls.graphql
node --input-type=module -e '
import { readFileSync } from "node:fs";
import { buildSchema, parse, validate } from "graphql";
const sdl = readFileSync("node_modules/@octokit/graphql-schema/schema.graphql", "utf8");
const errors = validate(buildSchema(sdl, { assumeValidSDL: true }), parse(readFileSync("pulls.graphql", "utf8")));
console.log(errors.length ? errors.join("\n") : "valid against GitHub'"'"'s GraphQL schema");
'

echo "--- Prism's request validation"
grep -h 'VALIDATOR' prism-hubspot.log prism-github.log
