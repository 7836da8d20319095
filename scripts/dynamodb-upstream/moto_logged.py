#!/usr/bin/env python3
"""moto's DynamoDB server, logging what it actually executed.

Usage: python moto_logged.py --log FILE [--host 127.0.0.1] [--port 0]

Serves moto's own WSGI app (DomainDispatcherApplication(create_backend_app), exactly what
`moto_server` runs) on a threaded werkzeug server, prints ONE line
`* Running on http://127.0.0.1:PORT` to stdout once the socket listens, and appends one JSON
line per request to FILE (format: README.md next to this file).

The action is recorded where moto invokes the handler method, i.e. what moto resolved and ran
(from X-Amz-Target, or from a query-string / form `Action` parameter, which moto prefers), and
the tables / keys are taken from the parameters as moto parsed them for that action.

This is a TEST upstream: moto reads the action from query strings and form bodies, which real
DynamoDB does not.
"""

import argparse
import base64
import datetime
import decimal
import json
import os
import signal
import sys
import threading

from werkzeug.serving import make_server

from moto.core.utils import camelcase_to_underscores, method_names_from_class
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

RECORD_KEY = "podiam.upstream_log.record"
TARGETS_KEY = "podiam.upstream_log.targets"
RAW_TARGET_KEY = "podiam.upstream_log.request_target"


# --------------------------------------------------------------------------------------------
# The log file


class Log:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, record):
        line = json.dumps(record, default=_json_default, sort_keys=False)
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


def _json_default(value):
    # moto's parser decodes blobs (B / BS attribute values) to bytes: log them as on the wire.
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


# --------------------------------------------------------------------------------------------
# What an executed action touched


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def describe_action(action, body):
    """tables, keys, key_condition and statements of `action` run with parameters `body`."""
    body = _dict(body)
    tables = []
    keys = []

    def table(name):
        if isinstance(name, str) and name not in tables:
            tables.append(name)

    def key(name, value):
        table(name)
        if value is not None:
            keys.append({"table": name, "key": value})

    if "TableName" in body:
        table(body.get("TableName"))

    if action in ("GetItem", "DeleteItem", "UpdateItem"):
        key(body.get("TableName"), body.get("Key"))
    elif action == "PutItem":
        key(body.get("TableName"), body.get("Item"))
    elif action == "BatchGetItem":
        for name, request in _dict(body.get("RequestItems")).items():
            table(name)
            for k in _list(_dict(request).get("Keys")):
                key(name, k)
    elif action == "BatchWriteItem":
        for name, requests in _dict(body.get("RequestItems")).items():
            table(name)
            for request in _list(requests):
                request = _dict(request)
                if "PutRequest" in request:
                    key(name, _dict(request["PutRequest"]).get("Item"))
                if "DeleteRequest" in request:
                    key(name, _dict(request["DeleteRequest"]).get("Key"))
    elif action in ("TransactWriteItems", "TransactGetItems"):
        for entry in _list(body.get("TransactItems")):
            for op, part in _dict(entry).items():
                part = _dict(part)
                if op not in ("Put", "Update", "Delete", "ConditionCheck", "Get"):
                    continue
                key(part.get("TableName"), part.get("Item") if op == "Put" else part.get("Key"))
    elif "RequestItems" in body:
        for name in _dict(body.get("RequestItems")):
            table(name)

    key_condition = None
    if action == "Query":
        key_condition = {
            field: body[field]
            for field in (
                "KeyConditionExpression",
                "ExpressionAttributeValues",
                "ExpressionAttributeNames",
                "KeyConditions",
            )
            if field in body
        }

    statements = None
    if action == "ExecuteStatement":
        statements = [body.get("Statement")]
    elif action == "BatchExecuteStatement":
        statements = [_dict(s).get("Statement") for s in _list(body.get("Statements"))]
    elif action == "ExecuteTransaction":
        statements = [_dict(s).get("Statement") for s in _list(body.get("TransactStatements"))]

    return tables, keys, key_condition, statements


# --------------------------------------------------------------------------------------------
# Hooking the point where moto invokes the action method


def _operation_names(service):
    try:
        from moto.core.utils import get_service_model

        model = get_service_model(service)
        return {camelcase_to_underscores(op): op for op in model.operation_names}
    except Exception:
        return {}


def _parsed_body(handler):
    body = getattr(handler, "body", None)
    if isinstance(body, dict):
        return body  # moto's parsed parameters (dynamodb) / json.loads (dynamodb_v20111205)
    params = getattr(handler, "params", None)
    if isinstance(params, dict):
        return params
    if isinstance(body, (bytes, str)) and body:
        try:
            return json.loads(body)
        except ValueError:
            return {}
    return {}


def hook(handler_class, resolve_method, operations):
    """Wraps handler_class.call_action so the action method moto invokes is recorded.

    resolve_method(handler) must return the method name the handler's call_action will
    invoke (computed exactly as moto does). That method is shadowed on the instance by a
    wrapper that records the action when - and only if - moto calls it.
    """
    original = handler_class.call_action

    def call_action(self, *args, **kwargs):
        record = self.normalized_request.environ.get(RECORD_KEY)
        try:
            resolved, method_name = resolve_method(self)
        except Exception:
            resolved, method_name = None, None
        if record is not None and method_name and method_name not in self.__dict__:
            try:
                method = getattr(self, method_name)
            except Exception:
                method = None
            if callable(method):

                def invoked(*a, **kw):
                    if record.get("action") is None:
                        action = operations.get(method_name, resolved)
                        tables, keys, key_condition, statements = describe_action(
                            action, _parsed_body(self)
                        )
                        record.update(
                            action=action,
                            tables=tables,
                            keys=keys,
                            key_condition=key_condition,
                            statements=statements,
                        )
                    return method(*a, **kw)

                self.__dict__[method_name] = invoked
        return original(self, *args, **kwargs)

    call_action.__wrapped__ = original
    handler_class.call_action = call_action


def _resolve_base_response(handler):
    # moto.core.responses.BaseResponse.call_action
    action = handler._get_action()
    method_name = camelcase_to_underscores(action or "")
    if method_name in method_names_from_class(handler.__class__):
        return action, method_name
    return action, None


def _resolve_v20111205(handler):
    # moto.dynamodb_v20111205.responses.DynamoHandler.call_action
    endpoint = handler.get_endpoint_name(handler.headers)
    if endpoint:
        return endpoint, camelcase_to_underscores(endpoint)
    return None, None


def install_hooks():
    from moto.dynamodb.responses import DynamoHandler

    hook(DynamoHandler, _resolve_base_response, _operation_names("dynamodb"))
    try:
        from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

        hook(
            DynamoDBStreamsHandler,
            _resolve_base_response,
            _operation_names("dynamodbstreams"),
        )
    except ImportError:
        pass
    try:
        from moto.dynamodb_v20111205.responses import DynamoHandler as LegacyHandler

        hook(LegacyHandler, _resolve_v20111205, {})
    except ImportError:
        pass


# --------------------------------------------------------------------------------------------
# The server


class LoggingRequestHandler(MotoRequestHandler):
    def make_environ(self):
        environ = super().make_environ()
        environ[TARGETS_KEY] = list(self.headers.get_all("X-Amz-Target") or [])
        environ[RAW_TARGET_KEY] = self.path
        return environ


class LoggingDispatcher(DomainDispatcherApplication):
    def __init__(self, log):
        super().__init__(create_backend_app)
        self.log = log

    def __call__(self, environ, start_response):
        request_target = environ.get(RAW_TARGET_KEY, environ.get("PATH_INFO", ""))
        path, _, query = request_target.partition("?")
        record = {
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "query": query,
            "target": environ.get(TARGETS_KEY, []),
            "service": None,
            "action": None,
            "tables": [],
            "keys": [],
            "key_condition": None,
            "statements": None,
            "status": None,
        }
        environ[RECORD_KEY] = record
        status = {}

        def logging_start_response(status_line, headers, exc_info=None):
            try:
                status["code"] = int(status_line.split(None, 1)[0])
            except (ValueError, IndexError):
                status["code"] = None
            return start_response(status_line, headers, exc_info)

        try:
            app = self.get_application(environ)
            record["service"] = getattr(app, "service", None)
            result = app(environ, logging_start_response)
            try:
                body = list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except BaseException as error:
            # werkzeug answers an unhandled exception with a 500.
            record["status"] = status.get("code") or 500
            record["error"] = f"{type(error).__name__}: {error}"[:500]
            self.log.write(record)
            raise
        record["status"] = status.get("code")
        self.log.write(record)
        return body


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, help="append one JSON line per request here")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: let the OS choose")
    args = parser.parse_args(argv)

    log = Log(args.log)
    install_hooks()
    app = LoggingDispatcher(log)
    app.debug = True  # as moto_server does

    def stop(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=LoggingRequestHandler
    )
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))
    # make_server has bound and is listening: connections queue until serve_forever.
    sys.stdout.write(f"* Running on http://{args.host}:{port}\n")
    sys.stdout.flush()
    # Whatever moto prints from now on goes to stderr, so stdout keeps its one line.
    sys.stdout = sys.stderr
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
