"""AWS's documented fine-grained access examples, enforced by `podiam gateway`.

Usage: gateway_fine_grained.py --gateway URL --upstream URL --upstream-log FILE
                               --audit-log FILE --upstream-kind moto|dynalite

From the DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access control":

(a) per-user items: table GameScores (hash UserId, range GameTitle); alice, carol and dave may
    GetItem, BatchGetItem, Query, PutItem, UpdateItem, DeleteItem and BatchWriteItem with
    `ForAllValues:StringEquals dynamodb:LeadingKeys ["${aws:username}"]`: each reads and writes
    their own items and is denied every other user's item, in every operation, including batches
    that mix their own keys with another's and a Query on another's partition. Then dave's
    policy is the same with plain `StringEquals`: his own items, single-item operations.
(b) attribute-level access: erin may GetItem, Query, BatchGetItem, UpdateItem and Scan with
    `ForAllValues:StringEquals dynamodb:Attributes [UserId, GameTitle, TopScore]` and
    `StringEqualsIfExists dynamodb:Select SPECIFIC_ATTRIBUTES, dynamodb:ReturnValues [NONE,
    UPDATED_OLD, UPDATED_NEW]`.

Requests go through the gateway with boto3, signed with each user's key. An allowed request must
succeed and appear in the upstream's log as exactly that operation; a denied one must be answered
AccessDeniedException with nothing in the upstream's log (but the gateway's own DescribeTable of
GameScores). The table's contents are checked directly on the upstream at the end.
"""

import json
import sys
import time

import boto3
import botocore.exceptions
from botocore import xform_name
from botocore.config import Config

import gateway_common
from gateway_common import PREFIX, REGION

TABLE = "GameScores"
SETTLE = 0.1


class Tail(gateway_common.Tail):
    """The upstream log's new lines, as JSON."""

    def read(self):
        return [json.loads(line) for line in super().read()]


def is_schema_lookup(line):
    """The gateway's own DescribeTable of GameScores (it reads key schemas that way)."""
    return (
        line.get("target") == [PREFIX + "DescribeTable"]
        and line.get("path") == "/"
        and line.get("query") == ""
        and line.get("tables") in ([TABLE], [])
    )


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def key(user, game):
    return {"UserId": S(user), "GameTitle": S(game)}


def item(user, game, top, wins=1, losses=2):
    return {**key(user, game), "TopScore": N(top), "Wins": N(wins), "Losses": N(losses)}


class Run:
    def __init__(self, args):
        self.args = args
        self.moto = args.upstream_kind == "moto"
        self.log = Tail(args.upstream_log)
        self.results = []
        self.failures = []
        self.lookups = 0
        # What GameScores must hold: (user, game) -> item.
        self.model = {}

    # ----------------------------------------------------------------------------------------

    def setup(self):
        self.account = boto3.client("sts").get_caller_identity()["Account"]
        self.table_arn = f"arn:aws:dynamodb:{REGION}:{self.account}:table/{TABLE}"
        self.iam = boto3.client("iam")
        self.upstream = boto3.client(
            "dynamodb",
            endpoint_url=self.args.upstream,
            region_name=REGION,
            aws_access_key_id="upstream",
            aws_secret_access_key="upstream",
        )
        self.upstream.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "UserId", "AttributeType": "S"},
                {"AttributeName": "GameTitle", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "UserId", "KeyType": "HASH"},
                {"AttributeName": "GameTitle", "KeyType": "RANGE"},
            ],
            ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        )
        deadline = time.time() + 30
        while self.upstream.describe_table(TableName=TABLE)["Table"]["TableStatus"] != "ACTIVE":
            if time.time() > deadline:
                raise AssertionError("GameScores never became ACTIVE on the upstream")
            time.sleep(0.05)
        for user in ("alice", "carol", "dave", "erin"):
            for n, game in enumerate(("Chess", "Go")):
                it = item(user, game, 100 + n, wins=10 + n, losses=20 + n)
                self.upstream.put_item(TableName=TABLE, Item=it)
                self.model[(user, game)] = it
        self.clients = {}
        # The upstream logs a request once its answer is complete: let the seeding's lines land.
        time.sleep(0.3)
        self.log.read()

    def user(self, name, statements):
        self.iam.create_user(UserName=name)
        self.put_policy(name, statements)
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        self.clients[name] = boto3.client(
            "dynamodb",
            endpoint_url=self.args.gateway,
            region_name=REGION,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def put_policy(self, name, statements, policy_name="GameScores"):
        document = {"Version": "2012-10-17", "Statement": statements}
        self.iam.put_user_policy(
            UserName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
        )

    # ----------------------------------------------------------------------------------------

    def case(self, who, name, op, params, expect, check=None, informational=False,
             upstream_quirk=None):
        """Sends `op` as `who`; `expect` is "allow" or "deny". Returns the answer (or None).
        `upstream_quirk` explains a known divergence of this upstream from DynamoDB in what it
        answers: a failed `check` is then printed as a note, not a failure (the gateway's
        decision is still checked)."""
        self.log.read()
        client = self.clients[who]
        answer, error = None, None
        try:
            answer = getattr(client, xform_name(op))(**params)
            outcome = "allowed"
        except botocore.exceptions.ClientError as e:
            error = e
            code = e.response["Error"]["Code"]
            outcome = "denied" if code == "AccessDeniedException" else f"error {code}"
        problems = []
        lines = []
        if outcome == "allowed":
            deadline = time.time() + 5
            while time.time() < deadline:
                lines += self.log.read()
                if lines and not is_schema_lookup(lines[-1]):
                    break
                time.sleep(0.01)
            time.sleep(0.02)
        else:
            time.sleep(SETTLE)
        lines += self.log.read()
        ran = [line for line in lines if not is_schema_lookup(line)]
        self.lookups += len(lines) - len(ran)
        if outcome == "allowed":
            if len(ran) != 1 or ran[0].get("action") != op or ran[0].get("tables") != [TABLE]:
                problems.append(f"the upstream logged {ran}, not one {op} on {TABLE}")
            elif ran[0].get("status") != 200:
                problems.append(f"the upstream answered {ran[0].get('status')}")
        elif ran:
            problems.append(f"refused, yet the upstream logged {ran}")
        notes = []
        if not informational:
            want = "allowed" if expect == "allow" else "denied"
            if outcome != want:
                detail = error.response["Error"].get("Message") if error else ""
                problems.insert(0, f"expected {want}, got {outcome} {detail}".rstrip())
            if outcome == "allowed" and check is not None:
                trouble = check(answer)
                if trouble and upstream_quirk:
                    notes.append(f"note: {trouble}: {upstream_quirk}")
                elif trouble:
                    problems.append(trouble)
        status = "FAIL" if problems else ("info" if informational else "ok")
        print(f"{status:5} {who:6} {op:18} expect {expect:5} -> {outcome:8} {name}")
        for p in problems + notes:
            print(f"        {p}")
        self.results.append((who, name, outcome))
        if problems:
            self.failures.append(f"{who} {op} {name}: {'; '.join(problems)}")
        return answer if outcome == "allowed" else None

    # ----------------------------------------------------------------------------------------
    # (a) per-user items

    def leading_keys_policy(self, operator):
        return [
            {
                "Sid": "AllowAccessToOnlyItemsMatchingUserID",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                ],
                "Resource": [self.table_arn],
                "Condition": {operator: {"dynamodb:LeadingKeys": ["${aws:username}"]}},
            }
        ]

    def per_user(self):
        print("(a) per-user items: ForAllValues:StringEquals dynamodb:LeadingKeys = ${aws:username}")
        for name in ("alice", "carol", "dave"):
            self.user(name, self.leading_keys_policy("ForAllValues:StringEquals"))
        users = ["alice", "carol", "dave"]
        for i, me in enumerate(users):
            other = users[(i + 1) % len(users)]
            self.per_user_matrix(me, other)

    def per_user_matrix(self, me, other):
        T = {"TableName": TABLE}
        model = self.model

        def returns(expected):
            def check(answer):
                got = answer.get("Item")
                return None if got == expected else f"answered {got}, not {expected}"
            return check

        self.case(me, "own item", "GetItem", {**T, "Key": key(me, "Chess")}, "allow",
                  returns(model[(me, "Chess")]))
        self.case(me, f"{other}'s item", "GetItem", {**T, "Key": key(other, "Chess")}, "deny")
        new = item(me, "Tetris", 7)
        if self.case(me, "own new item", "PutItem", {**T, "Item": new}, "allow") is not None:
            model[(me, "Tetris")] = new
        self.case(me, f"an item in {other}'s partition", "PutItem",
                  {**T, "Item": item(other, "Tetris", 1)}, "deny")
        pong = {**item(me, "Pong", 3), "Owner": S(other)}
        if self.case(me, f"own item naming {other} in another attribute", "PutItem",
                     {**T, "Item": pong}, "allow") is not None:
            model[(me, "Pong")] = pong
        update = {
            "UpdateExpression": "SET TopScore = :s",
            "ExpressionAttributeValues": {":s": N(500)},
        }
        if self.case(me, "own item", "UpdateItem", {**T, "Key": key(me, "Chess"), **update},
                     "allow") is not None:
            model[(me, "Chess")] = {**model[(me, "Chess")], "TopScore": N(500)}
        self.case(me, f"{other}'s item", "UpdateItem",
                  {**T, "Key": key(other, "Chess"), **update}, "deny")
        query = lambda user: {
            **T,
            "KeyConditionExpression": "UserId = :u",
            "ExpressionAttributeValues": {":u": S(user)},
        }

        def own_items(answer):
            users = {i["UserId"]["S"] for i in answer.get("Items", [])}
            return None if users == {me} else f"the query returned items of {users}"

        self.case(me, "own partition", "Query", query(me), "allow", own_items)
        self.case(me, f"{other}'s partition", "Query", query(other), "deny")
        self.case(me, f"{other}'s partition, via #placeholder", "Query", {
            **T,
            "KeyConditionExpression": "#u = :u AND begins_with(GameTitle, :g)",
            "ExpressionAttributeNames": {"#u": "UserId"},
            "ExpressionAttributeValues": {":u": S(other), ":g": S("C")},
        }, "deny")
        self.case(me, f"{other}'s partition, legacy KeyConditions", "Query", {
            **T,
            "KeyConditions": {
                "UserId": {"ComparisonOperator": "EQ", "AttributeValueList": [S(other)]}
            },
        }, "deny")
        self.case(me, "own keys", "BatchGetItem",
                  {"RequestItems": {TABLE: {"Keys": [key(me, "Chess"), key(me, "Go")]}}},
                  "allow",
                  lambda a: None if len(a["Responses"][TABLE]) == 2 else f"answered {a}")
        self.case(me, f"own key and {other}'s key", "BatchGetItem",
                  {"RequestItems": {TABLE: {"Keys": [key(me, "Chess"), key(other, "Chess")]}}},
                  "deny")
        self.case(me, f"{other}'s keys only", "BatchGetItem",
                  {"RequestItems": {TABLE: {"Keys": [key(other, "Go")]}}}, "deny")
        snake = item(me, "Snake", 9)
        if self.case(me, "own put and own delete", "BatchWriteItem", {"RequestItems": {TABLE: [
            {"PutRequest": {"Item": snake}},
            {"DeleteRequest": {"Key": key(me, "Pong")}},
        ]}}, "allow") is not None:
            model[(me, "Snake")] = snake
            model.pop((me, "Pong"), None)
        self.case(me, f"own put and {other}'s put", "BatchWriteItem", {"RequestItems": {TABLE: [
            {"PutRequest": {"Item": item(me, "Tron", 1)}},
            {"PutRequest": {"Item": item(other, "Tron", 1)}},
        ]}}, "deny")
        self.case(me, f"own put and a delete of {other}'s item", "BatchWriteItem",
                  {"RequestItems": {TABLE: [
                      {"PutRequest": {"Item": item(me, "Tron", 1)}},
                      {"DeleteRequest": {"Key": key(other, "Go")}},
                  ]}}, "deny")
        if self.case(me, "own item", "DeleteItem", {**T, "Key": key(me, "Tetris")},
                     "allow") is not None:
            model.pop((me, "Tetris"), None)
        self.case(me, f"{other}'s item", "DeleteItem", {**T, "Key": key(other, "Go")}, "deny")
        self.case(me, "the whole table (Scan is not in the policy)", "Scan", T, "deny")
        if self.moto:
            # Each entry of a transaction is authorized as its single-item action.
            self.case(me, "own items (each Get is a GetItem)", "TransactGetItems",
                      {"TransactItems": [
                          {"Get": {**T, "Key": key(me, "Chess")}},
                          {"Get": {**T, "Key": key(me, "Go")}},
                      ]}, "allow")
            self.case(me, f"own and {other}'s items", "TransactGetItems", {"TransactItems": [
                {"Get": {**T, "Key": key(me, "Chess")}},
                {"Get": {**T, "Key": key(other, "Chess")}},
            ]}, "deny")
            quake = item(me, "Quake", 1)
            if self.case(me, "own put and own update", "TransactWriteItems", {"TransactItems": [
                {"Put": {**T, "Item": quake}},
                {"Update": {**T, "Key": key(me, "Go"), "UpdateExpression": "SET Wins = :w",
                            "ExpressionAttributeValues": {":w": N(3)}}},
            ]}, "allow") is not None:
                model[(me, "Quake")] = quake
                model[(me, "Go")] = {**model[(me, "Go")], "Wins": N(3)}
            self.case(me, f"own put and a delete of {other}'s item", "TransactWriteItems",
                      {"TransactItems": [
                          {"Put": {**T, "Item": item(me, "Doom", 1)}},
                          {"Delete": {**T, "Key": key(other, "Chess")}},
                      ]}, "deny")

    def plain_string_equals(self):
        print("(a) dave with plain StringEquals on dynamodb:LeadingKeys (single-item operations)")
        self.put_policy("dave", self.leading_keys_policy("StringEquals"))
        # Give a policy change a moment, as IAM would need.
        time.sleep(0.5)
        T = {"TableName": TABLE}
        me, other = "dave", "alice"
        self.case(me, "own item", "GetItem", {**T, "Key": key(me, "Go")}, "allow",
                  lambda a: None if a.get("Item") == self.model[(me, "Go")] else f"got {a}")
        self.case(me, f"{other}'s item", "GetItem", {**T, "Key": key(other, "Go")}, "deny")
        new = item(me, "Doom", 5)
        if self.case(me, "own new item", "PutItem", {**T, "Item": new}, "allow") is not None:
            self.model[(me, "Doom")] = new
        self.case(me, f"{other}'s partition", "PutItem", {**T, "Item": item(other, "Doom", 5)},
                  "deny")
        update = {"UpdateExpression": "SET Wins = :w", "ExpressionAttributeValues": {":w": N(77)}}
        if self.case(me, "own item", "UpdateItem", {**T, "Key": key(me, "Doom"), **update},
                     "allow") is not None:
            self.model[(me, "Doom")] = {**self.model[(me, "Doom")], "Wins": N(77)}
        self.case(me, f"{other}'s item", "UpdateItem", {**T, "Key": key(other, "Go"), **update},
                  "deny")
        self.case(me, "own partition", "Query", {
            **T,
            "KeyConditionExpression": "UserId = :u",
            "ExpressionAttributeValues": {":u": S(me)},
        }, "allow")
        self.case(me, f"{other}'s partition", "Query", {
            **T,
            "KeyConditionExpression": "UserId = :u",
            "ExpressionAttributeValues": {":u": S(other)},
        }, "deny")
        if self.case(me, "own item", "DeleteItem", {**T, "Key": key(me, "Doom")},
                     "allow") is not None:
            self.model.pop((me, "Doom"), None)
        self.case(me, f"{other}'s item", "DeleteItem", {**T, "Key": key(other, "Go")}, "deny")
        # Not asserted: a single-valued operator on a multivalued key (what AWS warns about).
        self.case(me, f"own and {other}'s key (plain StringEquals: informational)",
                  "BatchGetItem",
                  {"RequestItems": {TABLE: {"Keys": [key(me, "Go"), key(other, "Go")]}}},
                  "?", informational=True)

    # ----------------------------------------------------------------------------------------
    # (b) attribute-level access

    def attributes(self):
        print("(b) attribute-level: ForAllValues:StringEquals dynamodb:Attributes "
              "[UserId, GameTitle, TopScore]; StringEqualsIfExists Select/ReturnValues")
        self.user("erin", [{
            "Sid": "LimitAccessToSpecificAttributes",
            "Effect": "Allow",
            "Action": [
                "dynamodb:UpdateItem",
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
                "dynamodb:Scan",
            ],
            "Resource": [self.table_arn],
            "Condition": {
                "ForAllValues:StringEquals": {
                    "dynamodb:Attributes": ["UserId", "GameTitle", "TopScore"]
                },
                "StringEqualsIfExists": {
                    "dynamodb:Select": "SPECIFIC_ATTRIBUTES",
                    "dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"],
                },
            },
        }])
        me = "erin"
        T = {"TableName": TABLE}
        K = {**T, "Key": key(me, "Chess")}
        allowed = {"UserId", "GameTitle", "TopScore"}

        def only_allowed(answer):
            items = answer.get("Items") or answer.get("Responses", {}).get(TABLE)
            items = items if items is not None else [answer.get("Item") or {}]
            extra = {a for i in items for a in i} - allowed
            return f"answered hidden attributes {extra}" if extra else None

        c = self.case
        c(me, "ProjectionExpression UserId, GameTitle, TopScore", "GetItem",
          {**K, "ProjectionExpression": "UserId, GameTitle, TopScore"}, "allow", only_allowed)
        c(me, "ProjectionExpression #t (TopScore)", "GetItem",
          {**K, "ProjectionExpression": "#t", "ExpressionAttributeNames": {"#t": "TopScore"}},
          "allow", only_allowed)
        c(me, "AttributesToGet [TopScore]", "GetItem", {**K, "AttributesToGet": ["TopScore"]},
          "allow", only_allowed,
          upstream_quirk="moto 5.2.5's GetItem ignores AttributesToGet (DynamoDB honours it)"
          if self.moto else None)
        c(me, "no projection (Select ALL_ATTRIBUTES)", "GetItem", K, "deny")
        c(me, "ProjectionExpression TopScore, Wins", "GetItem",
          {**K, "ProjectionExpression": "TopScore, Wins"}, "deny")
        c(me, "ProjectionExpression #n (Wins)", "GetItem",
          {**K, "ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": "Wins"}}, "deny")
        c(me, "AttributesToGet [Wins]", "GetItem", {**K, "AttributesToGet": ["Wins"]}, "deny")
        c(me, "ProjectionExpression Wins.x (a path into a hidden attribute)", "GetItem",
          {**K, "ProjectionExpression": "Wins.x"}, "deny")

        top = {"ExpressionAttributeValues": {":v": N(900)}}
        if c(me, "SET TopScore = :v", "UpdateItem",
             {**K, "UpdateExpression": "SET TopScore = :v", **top}, "allow") is not None:
            self.model[(me, "Chess")] = {**self.model[(me, "Chess")], "TopScore": N(900)}
        c(me, "SET #s = :v (#s = TopScore), ReturnValues UPDATED_NEW", "UpdateItem",
          {**K, "UpdateExpression": "SET #s = :v", "ExpressionAttributeNames": {"#s": "TopScore"},
           "ReturnValues": "UPDATED_NEW", **top}, "allow", only_allowed_attrs(allowed))
        c(me, "SET Wins = :v", "UpdateItem", {**K, "UpdateExpression": "SET Wins = :v", **top},
          "deny")
        c(me, "SET #w = :v (#w = Wins)", "UpdateItem",
          {**K, "UpdateExpression": "SET #w = :v", "ExpressionAttributeNames": {"#w": "Wins"},
           **top}, "deny")
        c(me, "SET TopScore = Wins", "UpdateItem", {**K, "UpdateExpression": "SET TopScore = Wins"},
          "deny")
        c(me, "REMOVE Wins", "UpdateItem", {**K, "UpdateExpression": "REMOVE Wins"}, "deny")
        c(me, "SET TopScore = :v, ReturnValues ALL_NEW", "UpdateItem",
          {**K, "UpdateExpression": "SET TopScore = :v", "ReturnValues": "ALL_NEW", **top}, "deny")
        c(me, "SET TopScore = :v, ReturnValues ALL_OLD", "UpdateItem",
          {**K, "UpdateExpression": "SET TopScore = :v", "ReturnValues": "ALL_OLD", **top}, "deny")
        c(me, "SET TopScore = :v, ConditionExpression Wins > :z", "UpdateItem",
          {**K, "UpdateExpression": "SET TopScore = :v", "ConditionExpression": "Wins > :z",
           "ExpressionAttributeValues": {":v": N(1), ":z": N(0)}}, "deny")
        c(me, "legacy AttributeUpdates on Wins", "UpdateItem",
          {**K, "AttributeUpdates": {"Wins": {"Value": N(1), "Action": "PUT"}}}, "deny")

        q = {**T, "KeyConditionExpression": "UserId = :u", "ExpressionAttributeValues": {":u": S(me)}}
        c(me, "Select SPECIFIC_ATTRIBUTES, ProjectionExpression TopScore", "Query",
          {**q, "Select": "SPECIFIC_ATTRIBUTES", "ProjectionExpression": "UserId, TopScore"},
          "allow", only_allowed)
        c(me, "ProjectionExpression only (Select defaults to SPECIFIC_ATTRIBUTES)", "Query",
          {**q, "ProjectionExpression": "GameTitle, TopScore"}, "allow", only_allowed)
        c(me, "Select ALL_ATTRIBUTES", "Query", {**q, "Select": "ALL_ATTRIBUTES"}, "deny")
        c(me, "no Select, no projection", "Query", q, "deny")
        c(me, "Select COUNT", "Query", {**q, "Select": "COUNT"}, "deny")
        c(me, "allowed projection, FilterExpression on Wins", "Query",
          {**q, "ProjectionExpression": "TopScore", "FilterExpression": "Wins > :z",
           "ExpressionAttributeValues": {":u": S(me), ":z": N(0)}}, "deny")
        c(me, "Select SPECIFIC_ATTRIBUTES, ProjectionExpression Losses", "Query",
          {**q, "Select": "SPECIFIC_ATTRIBUTES", "ProjectionExpression": "Losses"}, "deny")

        c(me, "Select SPECIFIC_ATTRIBUTES, ProjectionExpression TopScore", "Scan",
          {**T, "Select": "SPECIFIC_ATTRIBUTES", "ProjectionExpression": "UserId, TopScore"},
          "allow", only_allowed)
        c(me, "allowed projection, FilterExpression on Wins", "Scan",
          {**T, "ProjectionExpression": "TopScore", "FilterExpression": "Wins > :z",
           "ExpressionAttributeValues": {":z": N(0)}}, "deny")
        c(me, "allowed projection, FilterExpression #w (Wins)", "Scan",
          {**T, "ProjectionExpression": "TopScore", "FilterExpression": "#w > :z",
           "ExpressionAttributeNames": {"#w": "Wins"}, "ExpressionAttributeValues": {":z": N(0)}},
          "deny")
        c(me, "no projection", "Scan", T, "deny")

        c(me, "ProjectionExpression UserId, TopScore", "BatchGetItem",
          {"RequestItems": {TABLE: {"Keys": [key(me, "Chess"), key("alice", "Go")],
                                    "ProjectionExpression": "UserId, TopScore"}}},
          "allow", only_allowed)
        c(me, "no projection", "BatchGetItem",
          {"RequestItems": {TABLE: {"Keys": [key(me, "Chess")]}}}, "deny")
        c(me, "ProjectionExpression Wins", "BatchGetItem",
          {"RequestItems": {TABLE: {"Keys": [key(me, "Chess")], "ProjectionExpression": "Wins"}}},
          "deny")
        c(me, "PutItem (not in the policy)", "PutItem",
          {**T, "Item": {**key(me, "Chess"), "TopScore": N(1)}}, "deny")
        c(me, "DeleteItem (not in the policy)", "DeleteItem", K, "deny")

    # ----------------------------------------------------------------------------------------

    def final_state(self):
        items = []
        kwargs = {"TableName": TABLE, "ConsistentRead": True}
        while True:
            page = self.upstream.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        got = {(i["UserId"]["S"], i["GameTitle"]["S"]): i for i in items}
        if got != self.model:
            diff = {
                k: (self.model.get(k), got.get(k))
                for k in set(got) | set(self.model)
                if got.get(k) != self.model.get(k)
            }
            self.failures.append(f"GameScores on the upstream differs (expected, got): {diff}")
            print(f"FAIL  GameScores on the upstream differs (expected, got): {diff}")
        else:
            print(f"ok    GameScores on the upstream holds exactly the {len(got)} expected items")


def only_allowed_attrs(allowed):
    def check(answer):
        extra = set(answer.get("Attributes") or {}) - allowed
        return f"answered hidden attributes {extra}" if extra else None
    return check


def main():
    args = gateway_common.arguments().parse_args()
    run = Run(args)
    run.setup()
    print(f"fine-grained access examples against {args.upstream_kind} (account {run.account})")
    run.per_user()
    run.plain_string_equals()
    run.attributes()
    run.final_state()
    allowed = sum(1 for r in run.results if r[2] == "allowed")
    denied = sum(1 for r in run.results if r[2] == "denied")
    print(
        f"{len(run.results)} requests: {allowed} allowed, {denied} denied; "
        f"{len(run.failures)} failed checks; {run.lookups} upstream line(s) were the gateway's "
        "own DescribeTable key-schema reads"
    )
    if run.failures:
        print("FAILED:\n  " + "\n  ".join(run.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
