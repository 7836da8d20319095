"""Sequential CreatePodIdentityAssociation calls through boto3; prints the latency percentiles.

Usage: writes.py ENDPOINT CLUSTER ROLE_ARN COUNT LABEL

The time of each call is measured around the SDK call, so it includes signing, the HTTP round
trip and the server's commit (the store write); credentials come from the environment.
"""

import sys
import time

import boto3

endpoint, cluster, role, count, label = sys.argv[1:6]
eks = boto3.client("eks", endpoint_url=endpoint)
times = []
for i in range(int(count)):
    started = time.perf_counter()
    eks.create_pod_identity_association(
        clusterName=cluster, namespace=label, serviceAccount=f"sa-{i}", roleArn=role
    )
    times.append((time.perf_counter() - started) * 1000)
times.sort()


def pct(p):
    return times[min(len(times) - 1, int(len(times) * p / 100))]


print(
    f"{'CreatePodIdentityAssociation (' + label + ')':<44} {len(times):>6} calls   "
    f"p50 {pct(50):6.2f} ms   p99 {pct(99):6.2f} ms   max {times[-1]:6.2f} ms"
)
