-- wrk script for benches/auth_tokens.sh: each thread (one connection) holds one refresh-token
-- family and presents the token its last answer rotated to. Tokens come from the file $TOKENS,
-- one per line, one per thread.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  tokens[#tokens + 1] = line
end
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("rt", tokens[next_thread])
end

function request()
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=refresh_token&client_id=bench&refresh_token=" .. rt)
end

function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then
    rt = t
  end
end
