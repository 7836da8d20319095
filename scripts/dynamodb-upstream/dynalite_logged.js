#!/usr/bin/env node
// dynalite (in-memory DynamoDB) as a test upstream, logging what it actually executed.
//
// Usage: node dynalite_logged.js --log FILE [--host 127.0.0.1] [--port 0]
//
// Prints ONE line `* Running on http://127.0.0.1:PORT` to stdout once it listens, and appends
// one JSON line per request to FILE (format: README.md next to this file). The action is
// recorded where dynalite calls its action function (dynalite takes the operation from
// X-Amz-Target only), with the tables / keys of the request data as dynalite validated and
// passed it to that function.
'use strict'

var fs = require('fs')
var path = require('path')

function parseArgs (argv) {
  var args = { log: null, host: '127.0.0.1', port: 0 }
  for (var i = 0; i < argv.length; i++) {
    var arg = argv[i], value
    var eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1)
      arg = arg.slice(0, eq)
    }
    else if (arg === '--log' || arg === '--host' || arg === '--port') {
      value = argv[++i]
    }
    if (arg === '--log') args.log = value
    else if (arg === '--host') args.host = value
    else if (arg === '--port') args.port = Number(value)
    else {
      process.stderr.write('usage: node dynalite_logged.js --log FILE [--host H] [--port P]\n')
      process.exit(2)
    }
  }
  if (!args.log || args.host == null || !Number.isInteger(args.port)) {
    process.stderr.write('usage: node dynalite_logged.js --log FILE [--host H] [--port P]\n')
    process.exit(2)
  }
  return args
}

var args = parseArgs(process.argv.slice(2))
var logFd = fs.openSync(args.log, 'a')

function writeLog (record) {
  // One synchronous append per line: nothing buffered, nothing interleaved (single thread).
  fs.writeSync(logFd, JSON.stringify(record) + '\n')
}

// --- What an executed action touched ----------------------------------------------------

function isObject (v) { return v !== null && typeof v === 'object' && !Array.isArray(v) }
function obj (v) { return isObject(v) ? v : {} }
function arr (v) { return Array.isArray(v) ? v : [] }

function describeAction (action, body) {
  body = obj(body)
  var tables = [], keys = []
  function table (name) {
    if (typeof name === 'string' && tables.indexOf(name) < 0) tables.push(name)
  }
  function key (name, value) {
    table(name)
    if (value != null) keys.push({ table: name, key: value })
  }

  if ('TableName' in body) table(body.TableName)

  if (action === 'GetItem' || action === 'DeleteItem' || action === 'UpdateItem') {
    key(body.TableName, body.Key)
  }
  else if (action === 'PutItem') {
    key(body.TableName, body.Item)
  }
  else if (action === 'BatchGetItem') {
    Object.keys(obj(body.RequestItems)).forEach(function (name) {
      table(name)
      arr(obj(body.RequestItems[name]).Keys).forEach(function (k) { key(name, k) })
    })
  }
  else if (action === 'BatchWriteItem') {
    Object.keys(obj(body.RequestItems)).forEach(function (name) {
      table(name)
      arr(body.RequestItems[name]).forEach(function (request) {
        request = obj(request)
        if (request.PutRequest) key(name, obj(request.PutRequest).Item)
        if (request.DeleteRequest) key(name, obj(request.DeleteRequest).Key)
      })
    })
  }
  else if (action === 'TransactWriteItems' || action === 'TransactGetItems') {
    arr(body.TransactItems).forEach(function (entry) {
      Object.keys(obj(entry)).forEach(function (op) {
        if ([ 'Put', 'Update', 'Delete', 'ConditionCheck', 'Get' ].indexOf(op) < 0) return
        var part = obj(entry[op])
        key(part.TableName, op === 'Put' ? part.Item : part.Key)
      })
    })
  }
  else if (isObject(body.RequestItems)) {
    Object.keys(body.RequestItems).forEach(table)
  }

  var keyCondition = null
  if (action === 'Query') {
    keyCondition = {};
    [ 'KeyConditionExpression', 'ExpressionAttributeValues', 'ExpressionAttributeNames', 'KeyConditions' ]
      .forEach(function (field) { if (field in body) keyCondition[field] = body[field] })
  }
  return { tables: tables, keys: keys, key_condition: keyCondition }
}

// --- Hooking the point where dynalite calls the action ----------------------------------

// The record of the request whose 'end' handler is running right now. dynalite's 'end'
// handler parses, validates and calls the action function synchronously, so this is the
// request the action belongs to.
var current = null

var dynaliteDir = path.dirname(require.resolve('dynalite'))
var actionsDir = path.join(dynaliteDir, 'actions')
fs.readdirSync(actionsDir).filter(function (f) { return f.endsWith('.js') }).forEach(function (file) {
  var modulePath = path.join(actionsDir, file)
  var original = require(modulePath)
  var name = file.slice(0, -3)
  var operation = name.charAt(0).toUpperCase() + name.slice(1)
  var wrapped = function (store, data, cb) {
    var record = current
    current = null
    if (record && record.action === null) {
      var described = describeAction(operation, data)
      record.action = operation
      // Copy now: the action may change `data` while it runs.
      record.tables = JSON.parse(JSON.stringify(described.tables))
      record.keys = JSON.parse(JSON.stringify(described.keys))
      record.key_condition = described.key_condition && JSON.parse(JSON.stringify(described.key_condition))
    }
    return original.apply(this, arguments)
  }
  Object.defineProperty(wrapped, 'name', { value: original.name })
  // dynalite's index.js requires './actions/<name>' when it loads: it gets the wrapper.
  require.cache[modulePath].exports = wrapped
})

var dynalite = require('dynalite')

var server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })

var handlers = server.listeners('request')
server.removeAllListeners('request')
server.on('request', function (req, res) {
  var url = req.url || ''
  var q = url.indexOf('?')
  var targets = (req.headersDistinct && req.headersDistinct['x-amz-target']) || []
  var record = {
    method: req.method,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    target: targets.slice(),
    service: 'dynamodb',
    action: null,
    tables: [],
    keys: [],
    key_condition: null,
    statements: null,
    status: null,
  }
  var logged = false
  function finish () {
    if (logged) return
    logged = true
    record.status = res.headersSent || res.writableEnded ? res.statusCode : null
    writeLog(record)
  }
  res.on('finish', finish)
  res.on('close', finish)

  handlers.forEach(function (handler) { handler.call(server, req, res) })

  // Runs first among the 'end' listeners, right before dynalite's own handler.
  req.prependListener('end', function () { current = record })
  req.on('end', function () { if (current === record) current = null })
})

function stop () {
  try { fs.closeSync(logFd) }
  catch { /* already closed */ }
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

server.listen(args.port, args.host, function () {
  var address = server.address()
  var host = address.family === 'IPv6' ? '[' + address.address + ']' : address.address
  process.stdout.write('* Running on http://' + host + ':' + address.port + '\n')
})
