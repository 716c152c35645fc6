// Row 3 of `make bench`: nginx + njs doing the translation Rosetta does for one operation.
// FairCom listSessions in (POST /api), GeminiDB "list instance sessions" upstream through the
// internal /_gemini location (keep-alive pool, X-Auth-Token set there), FairCom envelope out.
// The mapping is the one bench/proxies/handwritten.py and naive.py use, field for field:
//   GeminiDB session {id, name, ...}  ->  FairCom {authToken: String(id), username: name,
//                                                  description: ""}
// The caller's authToken must equal $bench_caller_token (errorCode 12031 otherwise, echoing
// it, as FairCom does); other failures answer errorCode -1. Written for njs 0.7 (Debian 12).

var TOKEN_MESSAGE = "'authToken' does not match any existing session. Use a valid 'authToken' " +
    "or use 'createSession' to create a valid 'authToken'.";

function send(r, envelope) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify(envelope));
}

function failure(r, requestId, code, message, authToken) {
    var envelope = {};
    if (requestId !== undefined) {
        envelope.requestId = requestId;
    }
    if (authToken !== undefined) {
        envelope.authToken = authToken;
    }
    envelope.result = {};
    envelope.errorCode = code;
    envelope.errorMessage = message;
    send(r, envelope);
}

function listSessions(r) {
    var request;
    try {
        request = JSON.parse(r.requestText || '');
    } catch (e) {
        return failure(r, undefined, -1, 'request body is not JSON');
    }
    if (typeof request !== 'object' || request === null) {
        return failure(r, undefined, -1, 'request body must be a JSON object');
    }
    var requestId = request.requestId;
    if (request.api !== 'admin' || request.action !== 'listSessions') {
        return failure(r, requestId, -1, 'only admin/listSessions is served here');
    }
    if (request.authToken !== r.variables.bench_caller_token) {
        return failure(r, requestId, 12031, TOKEN_MESSAGE, request.authToken);
    }
    r.subrequest('/_gemini', {method: 'GET'}).then(function (reply) {
        if (reply.status !== 200) {
            return failure(r, requestId, -1, 'upstream answered HTTP ' + reply.status);
        }
        var data = JSON.parse(reply.responseText);
        var sessions = [];
        var nodes = data.node_sessions || [];
        for (var i = 0; i < nodes.length; i++) {
            var items = nodes[i].sessions || [];
            for (var j = 0; j < items.length; j++) {
                var s = items[j];
                sessions.push({authToken: String(s.id), username: s.name, description: ''});
            }
        }
        var envelope = {};
        if (requestId !== undefined) {
            envelope.requestId = requestId;
        }
        envelope.result = {sessions: sessions};
        envelope.errorCode = 0;
        envelope.errorMessage = '';
        send(r, envelope);
    }).catch(function (e) {
        failure(r, requestId, -1, 'upstream reply unusable: ' + e.message);
    });
}

export default {listSessions};
