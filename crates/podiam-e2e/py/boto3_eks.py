"""Every EKS and EKS Auth operation of podiam through boto3, unmodified, with their errors.

Endpoint, region and root credentials come from the environment; PODIAM_BIN is the podiam
binary (for `podiam cluster token`, the equivalent of `kubectl create token`).
"""

import json
import os
import subprocess

import boto3
import botocore.client
import botocore.exceptions

ACCOUNT = "000000000000"
called = set()
_make_api_call = botocore.client.BaseClient._make_api_call


def _recording(self, operation_name, api_params):
    called.add(operation_name)
    return _make_api_call(self, operation_name, api_params)


botocore.client.BaseClient._make_api_call = _recording


def fails(code, call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{call.__name__}: expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"{call.__name__} should fail with {code}")


def token(cluster, namespace, sa, audience):
    return subprocess.run(
        [os.environ["PODIAM_BIN"], "cluster", "token", "--cluster", cluster, "--namespace", namespace,
         "--service-account", sa, "--audience", audience, "--pod-name", "carts-abc", "--node-name", "node-1"],
        check=True, capture_output=True, text=True,
    ).stdout


def main():
    eks = boto3.client("eks")
    auth = boto3.client("eks-auth")
    iam = boto3.client("iam")
    vpc = {"subnetIds": ["subnet-1"]}
    cluster = eks.create_cluster(name="c1", roleArn=f"arn:aws:iam::{ACCOUNT}:role/c", resourcesVpcConfig=vpc)["cluster"]
    assert cluster["status"] == "ACTIVE", cluster
    assert isinstance(cluster["createdAt"], object)
    fails("ResourceInUseException", eks.create_cluster, name="c1", roleArn=f"arn:aws:iam::{ACCOUNT}:role/c", resourcesVpcConfig=vpc)
    eks.create_cluster(name="c2", roleArn=f"arn:aws:iam::{ACCOUNT}:role/c", resourcesVpcConfig=vpc)
    got = eks.describe_cluster(name="c1")["cluster"]
    assert got["identity"]["oidc"]["issuer"] == cluster["identity"]["oidc"]["issuer"]
    fails("ResourceNotFoundException", eks.describe_cluster, name="missing")
    names = [n for page in eks.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 1}) for n in page["clusters"]]
    assert names == ["c1", "c2"], names

    iam.create_role(RoleName="pia", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}],
    }))
    role = f"arn:aws:iam::{ACCOUNT}:role/pia"
    a = eks.create_pod_identity_association(clusterName="c1", namespace="carts", serviceAccount="carts", roleArn=role, tags={"k": "v"})["association"]
    fails("ResourceInUseException", eks.create_pod_identity_association, clusterName="c1", namespace="carts", serviceAccount="carts", roleArn=role)
    fails("ResourceNotFoundException", eks.create_pod_identity_association, clusterName="missing", namespace="carts", serviceAccount="carts", roleArn=role)
    fails("InvalidParameterException", eks.create_pod_identity_association, clusterName="c1", namespace="x", serviceAccount="x", roleArn="arn:aws:iam::000000000000:user/u")
    for i in range(3):
        eks.create_pod_identity_association(clusterName="c1", namespace="orders", serviceAccount=f"sa{i}", roleArn=role)
    pages = eks.get_paginator("list_pod_identity_associations").paginate(clusterName="c1", PaginationConfig={"PageSize": 2})
    ids = [s["associationId"] for page in pages for s in page["associations"]]
    assert len(ids) == 4 and a["associationId"] in ids, ids
    only = eks.list_pod_identity_associations(clusterName="c1", namespace="carts", serviceAccount="carts")["associations"]
    assert [s["associationId"] for s in only] == [a["associationId"]], only
    d = eks.describe_pod_identity_association(clusterName="c1", associationId=a["associationId"])["association"]
    assert d["tags"] == {"k": "v"} and d["roleArn"] == role, d
    fails("ResourceNotFoundException", eks.describe_pod_identity_association, clusterName="c1", associationId="a-00000000000000000")
    u = eks.update_pod_identity_association(clusterName="c1", associationId=a["associationId"], disableSessionTags=True)["association"]
    assert u["disableSessionTags"] is True, u

    # EKS Auth takes the node from the caller's identity: the root names none and is refused a
    # token bound to node-1; node-1's agent, a user tagged with its node, is served.
    fails("AccessDeniedException", auth.assume_role_for_pod_identity, clusterName="c1", token=token("c1", "carts", "carts", "pods.eks.amazonaws.com"))
    iam.create_user(UserName="agent-node-1", Tags=[{"Key": "podiam:node-name", "Value": "node-1"}])
    iam.put_user_policy(UserName="agent-node-1", PolicyName="node-agent", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}],
    }))
    assert iam.list_user_tags(UserName="agent-node-1")["Tags"] == [{"Key": "podiam:node-name", "Value": "node-1"}]
    key = iam.create_access_key(UserName="agent-node-1")["AccessKey"]
    auth = boto3.client("eks-auth", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    granted = auth.assume_role_for_pod_identity(clusterName="c1", token=token("c1", "carts", "carts", "pods.eks.amazonaws.com"))
    assert granted["subject"] == {"namespace": "carts", "serviceAccount": "carts"}, granted
    assert granted["podIdentityAssociation"]["associationId"] == a["associationId"]
    assert granted["credentials"]["accessKeyId"].startswith("ASIA")
    creds = granted["credentials"]
    pod = boto3.client("sts", aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"], aws_session_token=creds["sessionToken"])
    assert pod.get_caller_identity()["Arn"] == granted["assumedRoleUser"]["arn"]
    fails("InvalidTokenException", auth.assume_role_for_pod_identity, clusterName="c1", token=token("c1", "carts", "carts", "sts.amazonaws.com"))
    fails("ResourceNotFoundException", auth.assume_role_for_pod_identity, clusterName="c1", token=token("c1", "nobody", "nobody", "pods.eks.amazonaws.com"))
    fails("ResourceNotFoundException", auth.assume_role_for_pod_identity, clusterName="missing", token=token("c1", "carts", "carts", "pods.eks.amazonaws.com"))

    deleted = eks.delete_pod_identity_association(clusterName="c1", associationId=a["associationId"])["association"]
    assert deleted["associationId"] == a["associationId"]
    fails("ResourceNotFoundException", eks.delete_pod_identity_association, clusterName="c1", associationId=a["associationId"])
    eks.delete_cluster(name="c2")
    fails("ResourceNotFoundException", eks.delete_cluster, name="c2")
    print(json.dumps({"operations": sorted(called)}))


if __name__ == "__main__":
    main()
