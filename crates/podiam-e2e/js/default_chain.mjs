// The AWS SDK for JavaScript v3 as an application in a pod uses it: clients constructed with
// no credentials, so the default chain (@aws-sdk/credential-provider-node) finds them in the
// environment `podiam exec` gives the process (a web identity token file, the container
// credentials endpoint, or IMDS). Region and endpoints come from the standard variables
// (AWS_REGION, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_DYNAMODB, ...).
//
//   node default_chain.mjs identity
//       STS GetCallerIdentity; prints JSON: the caller and how the chain got its credentials.
//   node default_chain.mjs dynamodb TABLE [--create-table]
//       The same, then (CreateTable if asked and missing,) PutItem and GetItem on TABLE.
//
// On an error it prints `(<error name>) <message>` on stderr, as the AWS CLI does, then the
// links of the chain the failing client tried, and exits 1.

import { createRequire } from "node:module";
import { format } from "node:util";

import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import {
  DynamoDBClient,
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";

const require = createRequire(import.meta.url);

/**
 * A logger for one client: the SDK's debug lines (the default chain logs each provider it
 * tries; credentials are never logged) are kept, to tell which link answered.
 */
const loggers = [];
function recordingLogger() {
  const lines = [];
  const logger = {
    lines,
    trace: () => {},
    debug: (...args) => lines.push(format(...args)),
    info: () => {},
    warn: (...args) => process.stderr.write(`warn: ${format(...args)}\n`),
    // The SDK logs each failed call here too; the one line printed on failure says it.
    error: () => {},
  };
  loggers.push(logger);
  return logger;
}

/** The links of the default chain the SDK tried, in order (the last one answered). */
function chainSteps(logger) {
  const prefix = "@aws-sdk/credential-provider-node - ";
  return logger.lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
}

/** What the client's default chain resolved: where from, never the secrets. */
async function describeCredentials(client, logger) {
  // Memoized: the credentials the client's requests were signed with.
  const credentials = await client.config.credentials();
  return {
    // The SDK's own record of where they came from (its user-agent feature ids).
    source: credentials.$source ?? {},
    accessKeyIdPrefix: credentials.accessKeyId.slice(0, 4),
    hasSessionToken: Boolean(credentials.sessionToken),
    expiration: credentials.expiration?.toISOString() ?? null,
    chain: chainSteps(logger),
    imdsV1Fallback: logger.lines.some((l) => l.includes("using v1 fallback")),
  };
}

/** Records `host:port` of every request the client sends (after endpoint resolution). */
function recordHosts(client) {
  const hosts = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const { hostname, port } = args.request;
      hosts.push(port ? `${hostname}:${port}` : hostname);
      return next(args);
    },
    { step: "finalizeRequest", name: "podiamRecordHost" },
  );
  return hosts;
}

/** Versions of what ran, from the installed packages. */
function versions() {
  const version = (name) => require(`${name}/package.json`).version;
  return {
    node: process.versions.node,
    "@aws-sdk/client-sts": version("@aws-sdk/client-sts"),
    "@aws-sdk/client-dynamodb": version("@aws-sdk/client-dynamodb"),
    "@aws-sdk/credential-provider-node": version("@aws-sdk/credential-provider-node"),
  };
}

/** GetCallerIdentity with the default chain, and how the chain got the credentials. */
async function identity() {
  const logger = recordingLogger();
  const sts = new STSClient({ logger });
  const hosts = recordHosts(sts);
  const who = await sts.send(new GetCallerIdentityCommand({}));
  return {
    Arn: who.Arn,
    Account: who.Account,
    UserId: who.UserId,
    region: await sts.config.region(),
    hosts,
    ...(await describeCredentials(sts, logger)),
    versions: versions(),
  };
}

/** The caller, then (CreateTable if asked and missing,) PutItem and GetItem on `table`. */
async function dynamodb(table, createTable) {
  const caller = await identity();
  const logger = recordingLogger();
  const client = new DynamoDBClient({ logger });
  const hosts = recordHosts(client);
  if (createTable) {
    try {
      await client.send(new DescribeTableCommand({ TableName: table }));
    } catch (e) {
      if (e.name !== "ResourceNotFoundException") throw e;
      await client.send(
        new CreateTableCommand({
          TableName: table,
          AttributeDefinitions: [
            { AttributeName: "customerId", AttributeType: "S" },
            { AttributeName: "itemId", AttributeType: "S" },
          ],
          KeySchema: [
            { AttributeName: "customerId", KeyType: "HASH" },
            { AttributeName: "itemId", KeyType: "RANGE" },
          ],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
    }
  }
  const key = { customerId: { S: "js-sdk" }, itemId: { S: "sock" } };
  await client.send(
    new PutItemCommand({ TableName: table, Item: { ...key, quantity: { N: "2" } } }),
  );
  const got = await client.send(
    new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }),
  );
  return {
    caller,
    dynamodb: { hosts, ...(await describeCredentials(client, logger)) },
    item: got.Item ?? null,
  };
}

const [command, ...args] = process.argv.slice(2);
try {
  let out;
  if (command === "identity") {
    out = await identity();
  } else if (command === "dynamodb" && args.length === 1) {
    out = await dynamodb(args[0], false);
  } else if (command === "dynamodb" && args.length === 2 && args[1] === "--create-table") {
    out = await dynamodb(args[0], true);
  } else {
    process.stderr.write("usage: default_chain.mjs identity | dynamodb TABLE [--create-table]\n");
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} catch (e) {
  const last = loggers.at(-1);
  const steps = last ? chainSteps(last) : [];
  process.stderr.write(`(${e.name}) ${e.message}\n`);
  if (steps.length > 0) process.stderr.write(`chain: ${steps.join(", ")}\n`);
  process.exit(1);
}
