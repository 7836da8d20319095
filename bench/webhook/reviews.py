"""Writes AdmissionReviews of realistic pods (a Deployment's pod as the API server sends it,
about 4 KB) to OUT_DIR: irsa.json (carts/carts, annotated) and pod-identity.json
(orders/orders, associated). Usage: reviews.py OUT_DIR"""

import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])


def pod(namespace, name):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{name}-7d8f9c6b5-",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "service", "pod-template-hash": "7d8f9c6b5"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-7d8f9c6b5", "uid": "0c8a6a4e-6f4e-4b8e-9a51-2f7f8d1c3b7a", "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "serviceAccountName": name,
            "securityContext": {"fsGroup": 1000, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{"name": "wait-for-db", "image": "busybox:1.36", "command": ["sh", "-c", "until nc -z db 5432; do sleep 1; done"], "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
            "containers": [
                {
                    "name": name,
                    "image": f"public.ecr.aws/aws-containers/retail-store-sample-{name}:1.2.1",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "JAVA_OPTS", "value": "-XX:MaxRAMPercentage=75.0 -Djava.security.egd=file:/dev/urandom"}, {"name": "SPRING_PROFILES_ACTIVE", "value": "dynamodb"}, {"name": "CARTS_DYNAMODB_TABLENAME", "value": "eks-workshop-carts"}],
                    "envFrom": [{"configMapRef": {"name": name}}],
                    "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
                    "livenessProbe": {"httpGet": {"path": "/actuator/health/liveness", "port": 8080}, "initialDelaySeconds": 45, "periodSeconds": 3},
                    "readinessProbe": {"httpGet": {"path": "/actuator/health/readiness", "port": 8080}, "periodSeconds": 5, "successThreshold": 3},
                    "securityContext": {"capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 1000},
                    "volumeMounts": [{"mountPath": "/tmp", "name": "tmp-volume"}, {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-x7k2p", "readOnly": True}],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                },
                {"name": "envoy", "image": "envoyproxy/envoy:v1.31.0", "ports": [{"containerPort": 15000}], "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}},
            ],
            "volumes": [
                {"name": "tmp-volume", "emptyDir": {"medium": "Memory"}},
                {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}, {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}, {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}},
            ],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}, {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def review(namespace, name):
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "uid": "a7f0b6a2-3c1e-4f7e-9d3e-5b2c1a0f9e8d", "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
            "object": pod(namespace, name),
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


out.mkdir(parents=True, exist_ok=True)
for mode, (namespace, name) in {"irsa": ("carts", "carts"), "pod-identity": ("orders", "orders")}.items():
    (out / f"{mode}.json").write_text(json.dumps(review(namespace, name)))
