"""Every IAM and STS operation of podiam through boto3, unmodified.

The endpoint, region and root credentials come from the environment (AWS_ENDPOINT_URL,
AWS_DEFAULT_REGION, AWS_SHARED_CREDENTIALS_FILE). PODIAM_ISSUER_URL names the test issuer and
PODIAM_TOKEN is a token it minted for system:serviceaccount:carts:carts.

Usage: boto3_every_operation.py all | irsa
  all   exercise every operation with the root credentials
  irsa  use only boto3's default chain (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE)
"""

import json
import os
import sys

import boto3
import botocore.client
import botocore.exceptions

ACCOUNT = "000000000000"
checked = []
called = set()

# Record every operation boto3 sends, whichever client sends it.
_make_api_call = botocore.client.BaseClient._make_api_call


def _recording(self, operation_name, api_params):
    called.add(operation_name)
    return _make_api_call(self, operation_name, api_params)


botocore.client.BaseClient._make_api_call = _recording


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    checked.append(name)


def fails(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        check(f"{call.__name__} -> {code}", got == code, f"got {got}: {e}")
        return e
    raise AssertionError(f"{call.__name__} should fail with {code}")


def doc(statements):
    return {"Version": "2012-10-17", "Statement": statements}


def users(iam, sts):
    iam.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "carts"}])
    iam.create_user(UserName="bob", Path="/ops/")
    fails("EntityAlreadyExists", iam.create_user, UserName="alice")
    got = iam.get_user(UserName="bob")["User"]
    check("GetUser path", got["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/ops/bob", got)
    pages = iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 1})
    names = [u["UserName"] for page in pages for u in page["Users"]]
    check("ListUsers paginated", names == ["alice", "bob"], names)
    iam.tag_user(UserName="alice", Tags=[{"Key": "podiam:node-name", "Value": "node-1"}, {"Key": "team", "Value": "orders"}])
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="alice")["Tags"]}
    check("TagUser replaces and adds", tags == {"team": "orders", "podiam:node-name": "node-1"}, tags)
    iam.untag_user(UserName="alice", TagKeys=["podiam:node-name"])
    check("UntagUser", iam.list_user_tags(UserName="alice")["Tags"] == [{"Key": "team", "Value": "orders"}])
    fails("NoSuchEntity", iam.tag_user, UserName="nobody", Tags=[{"Key": "k", "Value": "v"}])

    key = iam.create_access_key(UserName="alice")["AccessKey"]
    check("CreateAccessKey", key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40)
    listed = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    check("ListAccessKeys", [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]], listed)
    alice = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    alice_sts = alice.client("sts")
    check(
        "alice GetCallerIdentity",
        alice_sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice",
    )
    e = fails("AccessDenied", alice.client("iam").list_users)
    check(
        "AccessDenied message",
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: iam:ListUsers"
        in str(e),
        str(e),
    )

    policy = doc([{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}])
    iam.put_user_policy(UserName="alice", PolicyName="list", PolicyDocument=json.dumps(policy, indent=2))
    got = iam.get_user_policy(UserName="alice", PolicyName="list")
    check("GetUserPolicy document", got["PolicyDocument"] == policy, got)
    check("ListUserPolicies", iam.list_user_policies(UserName="alice")["PolicyNames"] == ["list"])
    alice.client("iam").list_users()
    iam.delete_user_policy(UserName="alice", PolicyName="list")
    fails("NoSuchEntity", iam.get_user_policy, UserName="alice", PolicyName="list")

    ro = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam.attach_user_policy(UserName="alice", PolicyArn=ro)
    attached = iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    check("ListAttachedUserPolicies", attached == [{"PolicyName": "ReadOnlyAccess", "PolicyArn": ro}], attached)
    alice.client("iam").list_roles()
    iam.detach_user_policy(UserName="alice", PolicyArn=ro)
    fails("AccessDenied", alice.client("iam").list_roles)

    iam.update_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    check("key inactive", iam.list_access_keys(UserName="alice")["AccessKeyMetadata"][0]["Status"] == "Inactive")
    fails("InvalidClientTokenId", alice_sts.get_caller_identity)
    fails("DeleteConflict", iam.delete_user, UserName="alice")
    iam.delete_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="alice")
    fails("NoSuchEntity", iam.get_user, UserName="alice")


def roles(iam, sts):
    trust = doc([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}])
    role = iam.create_role(
        RoleName="app",
        AssumeRolePolicyDocument=json.dumps(trust),
        Description="app role",
        MaxSessionDuration=7200,
        Tags=[{"Key": "team", "Value": "carts"}],
    )["Role"]
    check("CreateRole id", role["RoleId"].startswith("AROA"), role)
    got = iam.get_role(RoleName="app")["Role"]
    check("GetRole trust", got["AssumeRolePolicyDocument"] == trust, got)
    check("GetRole duration", got["MaxSessionDuration"] == 7200, got)
    check("ListRoles", [r["RoleName"] for r in iam.list_roles()["Roles"]] == ["app"])
    iam.update_role(RoleName="app", Description="changed", MaxSessionDuration=3600)
    check("UpdateRole", iam.get_role(RoleName="app")["Role"]["Description"] == "changed")
    fails("ValidationError", iam.update_role, RoleName="app", MaxSessionDuration=100000)
    trust2 = doc([{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}])
    iam.update_assume_role_policy(RoleName="app", PolicyDocument=json.dumps(trust2))
    check("UpdateAssumeRolePolicy", iam.get_role(RoleName="app")["Role"]["AssumeRolePolicyDocument"] == trust2)
    iam.tag_role(RoleName="app", Tags=[{"Key": "env", "Value": "dev"}])
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName="app")["Tags"]}
    check("ListRoleTags", tags == {"team": "carts", "env": "dev"}, tags)
    iam.untag_role(RoleName="app", TagKeys=["team"])
    check("UntagRole", iam.list_role_tags(RoleName="app")["Tags"] == [{"Key": "env", "Value": "dev"}])
    inline = doc([{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}])
    iam.put_role_policy(RoleName="app", PolicyName="items", PolicyDocument=json.dumps(inline))
    check("GetRolePolicy", iam.get_role_policy(RoleName="app", PolicyName="items")["PolicyDocument"] == inline)
    check("ListRolePolicies", iam.list_role_policies(RoleName="app")["PolicyNames"] == ["items"])
    ddb = "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"
    iam.attach_role_policy(RoleName="app", PolicyArn=ddb)
    check("ListAttachedRolePolicies", iam.list_attached_role_policies(RoleName="app")["AttachedPolicies"][0]["PolicyArn"] == ddb)
    fails("DeleteConflict", iam.delete_role, RoleName="app")
    iam.detach_role_policy(RoleName="app", PolicyArn=ddb)
    iam.delete_role_policy(RoleName="app", PolicyName="items")
    iam.delete_role(RoleName="app")
    fails("NoSuchEntity", iam.get_role, RoleName="app")
    fails(
        "MalformedPolicyDocument",
        iam.create_role,
        RoleName="bad",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}',
    )


def policies(iam, sts):
    v1 = doc([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
    policy = iam.create_policy(PolicyName="reader", PolicyDocument=json.dumps(v1), Description="reads")["Policy"]
    arn = policy["Arn"]
    check("CreatePolicy", arn == f"arn:aws:iam::{ACCOUNT}:policy/reader" and policy["DefaultVersionId"] == "v1")
    check("GetPolicy", iam.get_policy(PolicyArn=arn)["Policy"]["PolicyName"] == "reader")
    check("GetPolicyVersion", iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"] == v1)
    local = iam.list_policies(Scope="Local")["Policies"]
    check("ListPolicies Local", [p["PolicyName"] for p in local] == ["reader"], local)
    v2 = doc([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"}])
    version = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(v2), SetAsDefault=True)["PolicyVersion"]
    check("CreatePolicyVersion", version["VersionId"] == "v2" and version["IsDefaultVersion"])
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    check("ListPolicyVersions", sorted(v["VersionId"] for v in versions) == ["v1", "v2"], versions)
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    check("SetDefaultPolicyVersion", iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v1")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    iam.delete_policy(PolicyArn=arn)
    fails("NoSuchEntity", iam.get_policy, PolicyArn=arn)


def providers(iam, sts):
    url = os.environ["PODIAM_ISSUER_URL"]
    arn = iam.create_open_id_connect_provider(Url=url, ClientIDList=["sts.amazonaws.com"])["OpenIDConnectProviderArn"]
    host = url.split("://", 1)[1]
    check("CreateOpenIDConnectProvider", arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}", arn)
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="extra")
    iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["a" * 40])
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    check("GetOpenIDConnectProvider", got["ClientIDList"] == ["sts.amazonaws.com", "extra"] and got["ThumbprintList"] == ["a" * 40], got)
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="extra")
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    check("ListOpenIDConnectProviders", [p["Arn"] for p in listed] == [arn])
    return arn


def simulation(iam, sts):
    iam.create_user(UserName="sim")
    iam.put_user_policy(
        UserName="sim",
        PolicyName="p",
        PolicyDocument=json.dumps(doc([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}])),
    )
    results = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/sim", ActionNames=["s3:GetObject", "s3:DeleteBucket", "ec2:RunInstances"]
    )["EvaluationResults"]
    decisions = [r["EvalDecision"] for r in results]
    check("SimulatePrincipalPolicy", decisions == ["allowed", "explicitDeny", "implicitDeny"], decisions)
    custom = iam.simulate_custom_policy(
        PolicyInputList=[json.dumps(doc([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]))],
        ActionNames=["sts:AssumeRole"],
    )["EvaluationResults"]
    check("SimulateCustomPolicy", custom[0]["EvalDecision"] == "allowed", custom)


def security_token_service(iam, sts, provider_arn):
    me = sts.get_caller_identity()
    check("root GetCallerIdentity", me["Arn"] == f"arn:aws:iam::{ACCOUNT}:root", me)
    trust = doc([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}])
    iam.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps(trust))
    out = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/worker",
        RoleSessionName="job-1",
        DurationSeconds=900,
        Tags=[{"Key": "job", "Value": "1"}],
        Policy=json.dumps(doc([{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}])),
    )
    check("AssumeRole arn", out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/job-1", out)
    creds = out["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"]
    )
    check("session GetCallerIdentity", session.client("sts").get_caller_identity()["Arn"] == out["AssumedRoleUser"]["Arn"])
    fails("AccessDenied", sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/missing", RoleSessionName="xx")

    host = provider_arn.split("oidc-provider/", 1)[1]
    irsa_trust = doc([{
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{host}:sub": "system:serviceaccount:carts:carts", f"{host}:aud": "sts.amazonaws.com"}},
    }])
    iam.create_role(RoleName="carts", AssumeRolePolicyDocument=json.dumps(irsa_trust), MaxSessionDuration=7200)
    anonymous = boto3.client("sts", aws_access_key_id="unused", aws_secret_access_key="unused")
    web = anonymous.assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/carts",
        RoleSessionName="carts-pod",
        WebIdentityToken=os.environ["PODIAM_TOKEN"] + "\n",
        DurationSeconds=7200,
    )
    check("AssumeRoleWithWebIdentity subject", web["SubjectFromWebIdentityToken"] == "system:serviceaccount:carts:carts", web)
    check("AssumeRoleWithWebIdentity provider", web["Provider"] == provider_arn, web)
    check("AssumeRoleWithWebIdentity audience", web["Audience"] == "sts.amazonaws.com", web)
    fails(
        "ValidationError",
        anonymous.assume_role_with_web_identity,
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/carts",
        RoleSessionName="carts-pod",
        WebIdentityToken=os.environ["PODIAM_TOKEN"],
        DurationSeconds=7201,
    )
    fails(
        "InvalidIdentityToken",
        anonymous.assume_role_with_web_identity,
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/carts",
        RoleSessionName="carts-pod",
        WebIdentityToken=os.environ["PODIAM_TOKEN"][:-4] + "AAAA",
    )
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)
    fails("NoSuchEntity", iam.get_open_id_connect_provider, OpenIDConnectProviderArn=provider_arn)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    if mode == "irsa":
        # Nothing but the environment: the default chain finds the web-identity provider.
        me = boto3.client("sts").get_caller_identity()
        print(json.dumps({"Arn": me["Arn"]}))
        return
    iam = boto3.client("iam")
    sts = boto3.client("sts")
    users(iam, sts)
    roles(iam, sts)
    policies(iam, sts)
    provider_arn = providers(iam, sts)
    simulation(iam, sts)
    security_token_service(iam, sts, provider_arn)
    print(json.dumps({"checked": len(checked), "checks": checked, "operations": sorted(called)}))


if __name__ == "__main__":
    main()
