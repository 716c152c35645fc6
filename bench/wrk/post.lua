-- A static POST for wrk: the body is the first script argument (after `--`), sent as JSON.
-- Headers such as Authorization come from wrk's -H. No request()/response() callbacks, so
-- wrk builds the request once and adds no per-request Lua work.
function init(args)
  wrk.method = "POST"
  wrk.body = args[1] or "{}"
  wrk.headers["Content-Type"] = "application/json"
end
