#!/usr/bin/env node
// Compile contracts/*.sol with solc-js (the exact version pinned in package.json) through its
// standard JSON interface and write contracts/artifacts/<Contract>.json, each holding `abi`,
// `bytecode` and `deployedBytecode` (0x-prefixed hex) and the compiler settings used.
//
//   node contracts/compile.js           write the artifacts
//   node contracts/compile.js --check   compile and exit 1 if any artifact differs (CI)
//
// The output is byte-identical run to run (solc-js is deterministic; source unit names are
// relative file names, so the metadata hash does not depend on the checkout's path).
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const HERE = __dirname;
const OUT = path.join(HERE, "artifacts");
const CONTRACTS = ["Reputation", "ReputationFactory"];
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function compile() {
  const sources = {};
  for (const file of fs.readdirSync(HERE).filter((f) => f.endsWith(".sol")).sort()) {
    sources[file] = { content: fs.readFileSync(path.join(HERE, file), "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
  if (errors.length) process.exit(2);
  const artifacts = {};
  for (const name of CONTRACTS) {
    const unit = output.contracts[`${name}.sol`][name];
    const artifact = {
      contractName: name,
      compiler: { name: "solc-js", version: solc.version(), settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer } },
      abi: unit.abi,
      bytecode: "0x" + unit.evm.bytecode.object,
      deployedBytecode: "0x" + unit.evm.deployedBytecode.object,
    };
    artifacts[name] = JSON.stringify(artifact, null, 2) + "\n";
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes("--check");
  const artifacts = compile();
  let stale = 0;
  for (const [name, text] of Object.entries(artifacts)) {
    const file = path.join(OUT, `${name}.json`);
    const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
    if (check) {
      if (current !== text) {
        process.stderr.write(`${path.relative(process.cwd(), file)} differs from a fresh compile; run \`npm run compile\` and commit it\n`);
        stale += 1;
      }
    } else if (current !== text) {
      fs.mkdirSync(OUT, { recursive: true });
      fs.writeFileSync(file, text);
      process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
    }
  }
  if (check) {
    if (stale) process.exit(1);
    process.stdout.write("contract artifacts up to date\n");
  }
}

main();
