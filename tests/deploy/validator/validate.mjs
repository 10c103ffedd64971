// Validates Kubernetes manifests offline against the JSON schemas bundled in the
// kubernetes-models package: every document of every file given, by apiVersion and kind.
// Prints one line per document; exits 1 if any is invalid or of an unknown kind.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

let bad = 0;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const [i, doc] of docs.entries()) {
    const where = `${file}#${i}`;
    if (doc.errors.length) {
      console.log(`INVALID ${where}: YAML: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const { apiVersion, kind } = obj;
    const mod = apiVersion && apiVersion.includes("/") ? apiVersion : `v1`;
    let Kind;
    try {
      Kind = (await import(`kubernetes-models/${mod}`))[kind];
    } catch (e) {
      Kind = undefined;
    }
    if (!Kind) {
      console.log(`INVALID ${where}: unknown apiVersion/kind ${apiVersion}/${kind}`);
      bad++;
      continue;
    }
    try {
      new Kind(obj).validate();
      console.log(`ok ${where}: ${apiVersion} ${kind} ${obj.metadata?.name ?? ""}`);
    } catch (e) {
      console.log(`INVALID ${where}: ${kind}: ${e.message.replace(/\s+/g, " ")}`);
      bad++;
    }
  }
}
process.exit(bad ? 1 : 0);
