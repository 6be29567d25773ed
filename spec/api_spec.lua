-- doc/API.md against the module: every name the module exports (go.*, and
-- the public fields of go.context and go.ffi) and every method and field of
-- every object type has an entry in the reference, and every entry names
-- something that exists, so the two cannot drift either way. Each entry
-- also says what it returns, what it raises and its Go equivalent.
local lu = require "luaunit"
local go = require "goro"

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$")) or "."

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local DOC = slurp(ROOT .. "/doc/API.md")

-- One object of each type the reference documents methods of, by the name
-- its section calls it. cleanup() stops what a sample started.
local cleanups = {}
local function cleanup(f) cleanups[#cleanups + 1] = f end

local SAMPLES = {
  ch = function() return go.chan(1) end,
  t = function()
    local t = go.timer(3600)
    cleanup(function() t:stop() end)
    return t
  end,
  tk = function()
    local tk = go.ticker(3600)
    cleanup(function() tk:stop() end)
    return tk
  end,
  wg = function() return go.waitgroup() end,
  a = function() return go.atomic() end,
  av = function() return go.atomic_value() end,
  m = function() return go.syncmap() end,
  mu = function() return go.mutex() end,
  rw = function() return go.rwmutex() end,
  guard = function()
    local rw = go.rwmutex()
    local g = rw:rlock()
    cleanup(function() g:unlock() end)
    return g
  end,
  rl = function() return go.rwmutex():rlocker() end,
  once = function() return go.once() end,
  cond = function() return go.cond(go.mutex()) end,
  sem = function() return go.semaphore(2) end,
  sf = function() return go.singleflight() end,
  ctx = function()
    local ctx, cancel = go.context.with_cancel(go.context.background())
    cleanup(cancel)
    return ctx
  end,
  g = function()
    local g = go.errgroup()
    cleanup(function() g:wait() end)
    return g
  end,
  p = function()
    local p = go.pool{fn = function(x) return x end, workers = 1}
    cleanup(function() p:wait() end)
    return p
  end,
  lim = function() return go.limiter(10) end,
  lib = function() return go.ffi.C end,
  buf = function() return go.ffi.buffer(4) end,
  f = function() return go.ffi.C:func("int abs(int)") end,
}

-- ------------------------------------------------------------ the reference

-- Entries: {heading, body, names = {span, ...}}; what they document:
-- funcs["go.x.y"], methods[recv][name], fields[recv][name], call (go(...)).
local function parse_doc()
  local entries, funcs, methods, fields, call = {}, {}, {}, {}, false
  local cur
  for line in (DOC .. "\n"):gmatch("([^\n]*)\n") do
    local h = line:match("^### (.*)$")
    if h then
      cur = {heading = h, body = {}, names = {}}
      entries[#entries + 1] = cur
      for span in h:gmatch("`([^`]+)`") do
        cur.names[#cur.names + 1] = span
        local recv, m = span:match("^([%a_][%w_]*):([%a_][%w_]*)%(")
        if not recv then recv, m = span:match('^([%a_][%w_]*)%["([%a_][%w_]*)"%]%(') end
        if recv then
          methods[recv] = methods[recv] or {}
          methods[recv][m] = span
        elseif span:match("^go%(") then
          call = true
        else
          local path = span:match("^([%a_][%w_]*[%.%w_]*)")
          if path and path:match("^go%.") then
            funcs[path] = span
          elseif path and path:match("^[%a_][%w_]*%.[%a_][%w_]*$") then
            local r, f = path:match("^(.-)%.(.*)$")
            fields[r] = fields[r] or {}
            fields[r][f] = span
          else
            error("doc/API.md: cannot tell what `" .. span .. "` documents (heading: " .. h .. ")")
          end
        end
      end
    elseif line:match("^##? ") then
      cur = nil
    elseif cur then
      cur.body[#cur.body + 1] = line
    end
  end
  return entries, funcs, methods, fields, call
end

local ENTRIES, FUNCS, METHODS, FIELDS, CALL = parse_doc()

-- ------------------------------------------------------------ the module

-- Every identifier the binding's C sources quote and the Lua library uses:
-- whatever a lazily loaded name or a computed __index answers to is among
-- them (its name has to be written somewhere). Also the keys of the tables
-- go's own __index closes over (the lazily loaded names).
local function candidates()
  local set = {}
  local idx = getmetatable(go).__index
  for i = 1, type(idx) == "function" and 255 or 0 do
    local name, v = debug.getupvalue(idx, i)
    if not name then break end
    if type(v) == "table" then
      for k in pairs(v) do set[k] = true end
    end
  end
  local p = io.popen("find " .. ROOT .. "/lua -name '*.c' -o -name '*.lua'")
  for path in p:lines() do
    local src = slurp(path)
    if path:match("%.c$") then
      for id in src:gmatch('"([%a_][%w_]*)"') do set[id] = true end
    else
      for id in src:gmatch("[%a_][%w_]*") do set[id] = true end
    end
  end
  p:close()
  for _, t in ipairs{METHODS, FIELDS} do
    for _, names in pairs(t) do
      for n in pairs(names) do set[n] = true end
    end
  end
  return set
end

local CANDIDATES = candidates()

local function public(k)
  return type(k) == "string" and not k:match("^__")
end

-- go.* and one level into the module tables among them (go.context, go.ffi).
local function exports()
  local out = {}
  local function add(prefix, t, depth)
    local seen = {}
    for k in pairs(t) do seen[k] = true end
    for k in pairs(CANDIDATES) do seen[k] = true end
    for k in pairs(seen) do
      local v = public(k) and t[k]
      if v ~= nil and v ~= false then
        out[prefix .. k] = v
        if depth == 0 and type(v) == "table" then add(prefix .. k .. ".", v, 1) end
      end
    end
  end
  add("go.", go, 0)
  return out
end

-- The methods (function values) and fields (other values) an object's
-- metatable answers to; a computed __index is asked every candidate name.
local function members(obj)
  local mt = getmetatable(obj)
  local idx = type(mt) == "table" and rawget(mt, "__index")
  local ms, fs = {}, {}
  local function put(k, v)
    if not public(k) or v == nil then return end
    if type(v) == "function" then ms[k] = true else fs[k] = true end
  end
  if type(idx) == "table" then
    for k, v in pairs(idx) do put(k, v) end
  elseif type(idx) == "function" then
    for k in pairs(CANDIDATES) do
      local ok, v = pcall(idx, obj, k)
      if ok then put(k, v) end
    end
  end
  return ms, fs
end

local function keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- ------------------------------------------------------------ tests

function test_the_reference_parses_into_entries()
  lu.assertTrue(#ENTRIES >= 100, "only " .. #ENTRIES .. " entries")
  lu.assertTrue(CALL, "go(fn, ...) is documented")
  lu.assertEquals(type(getmetatable(go).__call), "function")
end

function test_every_export_of_go_is_in_the_reference()
  local missing = {}
  for path in pairs(exports()) do
    if not FUNCS[path] then missing[#missing + 1] = path end
  end
  table.sort(missing)
  lu.assertEquals(missing, {}, "exported but not in doc/API.md: add an entry for each")
end

function test_every_function_in_the_reference_is_exported()
  local ex, stale = exports(), {}
  for path in pairs(FUNCS) do
    if ex[path] == nil then stale[#stale + 1] = path end
  end
  table.sort(stale)
  lu.assertEquals(stale, {}, "in doc/API.md but not exported: remove or fix the entry")
end

function test_every_documented_object_has_a_sample_here()
  local unknown = {}
  for _, t in ipairs{METHODS, FIELDS} do
    for recv in pairs(t) do
      if not SAMPLES[recv] then unknown[#unknown + 1] = recv end
    end
  end
  table.sort(unknown)
  lu.assertEquals(unknown, {}, "doc/API.md documents methods of these; add a sample to SAMPLES")
end

function test_every_method_and_field_of_every_object_is_in_the_reference()
  for recv, make in pairs(SAMPLES) do
    local ms, fs = members(make())
    lu.assertEquals(keys(ms), keys(METHODS[recv]), "methods of `" .. recv .. "`")
    lu.assertEquals(keys(fs), keys(FIELDS[recv]), "fields of `" .. recv .. "`")
  end
end

function test_every_entry_says_returns_errors_and_go()
  for _, e in ipairs(ENTRIES) do
    local body = table.concat(e.body, "\n")
    for _, what in ipairs{"Returns", "Errors", "Go"} do
      lu.assertStrContains(body, "- **" .. what .. ":** ", false,
        "doc/API.md: ### " .. e.heading .. " lacks its " .. what .. " line")
    end
  end
end

function test_the_tour_functions_the_issue_named_are_in_the_reference()
  for _, name in ipairs{"p:wait(", "g:try_go(", "go.context.with_value(", "mu:trylock(",
                        "rw:rlocker(", "sem:try_acquire(", "sem:held(", "lim:allow(",
                        "wg:count(", "go.maxthreads(", "go.shard("} do
    lu.assertStrContains(DOC, "### `" .. name, false, name)
  end
end

os.exit((function()
  local rc = lu.LuaUnit.run()
  for i = #cleanups, 1, -1 do cleanups[i]() end
  return rc
end)())
