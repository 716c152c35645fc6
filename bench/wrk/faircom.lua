-- A FairCom JSON Action caller for wrk: listSessions with an authToken.
--   -- login USER PASSWORD   first createSession (once per wrk thread; any request sent
--                            before the token arrives is also a createSession), then
--                            listSessions with the authToken it returned
--   -- token TOKEN           listSessions with a token known in advance
-- response() is defined in both modes so that every row using this script costs wrk the
-- same per-request Lua work.
local token = nil
local user, password = nil, nil
local list_request = nil
local headers = {["Content-Type"] = "application/json"}

function init(args)
  if args[1] == "token" then
    token = args[2]
  elseif args[1] == "login" then
    user, password = args[2], args[3]
  else
    error("faircom.lua: expected `-- login USER PASSWORD` or `-- token TOKEN`")
  end
end

local function quoted(text)
  return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function request()
  if token ~= nil then
    if list_request == nil then
      list_request = wrk.format("POST", "/api", headers,
        '{"api":"admin","action":"listSessions","params":{},"authToken":' .. quoted(token) ..
        ',"requestId":1}')
    end
    return list_request
  end
  return wrk.format("POST", "/api", headers,
    '{"api":"admin","action":"createSession","params":{"username":' .. quoted(user) ..
    ',"password":' .. quoted(password) .. ',"description":"wrk"},"requestId":0}')
end

function response(status, headers, body)
  if token == nil then
    local found = body:match('"authToken"%s*:%s*"([^"]+)"')
    if found ~= nil then
      token = found
    end
  end
end
