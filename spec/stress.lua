-- stress.lua — randomized, seeded, time-bounded stress of the whole stack
-- from Lua: 8 Ps on however many cores there are, rounds of random
-- scenarios (pipelines, cancellation by a closed channel, send on a channel
-- closed under the senders, select with timeouts, waitgroups, mutexes,
-- spawn trees, token rings, CPU-bound goroutines next to ping-pong and
-- go.blocking calls, channel operations inside user coroutines, timers,
-- goroutine errors, deadlocks made on purpose, GOMAXPROCS changes while
-- goroutines run), each checking its invariants:
--   * every value sent is received exactly once, or reported undelivered
--     because its channel was closed or the work was cancelled (per-id
--     accounting: no loss, no duplicate);
--   * no goroutine leak: go.numgoroutine() is back to its baseline after
--     every round's go.wait();
--   * no deadlock except the ones a round makes on purpose, which must be
--     reported as "all goroutines are asleep - deadlock!" (and no hang:
--     every wait of the main state has a watchdog);
--   * errors raised in goroutines reach the main state exactly once each.
--
--   lua5.4 spec/stress.lua               (or: make stress)
--   STRESS_SEED=n       replay the mix of operations of seed n (the
--                       interleaving is the scheduler's, so a replay is a
--                       strong hint, not a guarantee)
--   STRESS_SECONDS=n    time budget (default 20)
--   STRESS_SCALE=f      sizes of the rounds (default 1; sanitizers: 0.1-0.2)
--   STRESS_PROCS=n      GOMAXPROCS (default 8)
--   STRESS_ONLY=a,b     run only these scenarios
--   STRESS_VERBOSE=1    a line per round
--
-- spec/stress_spec.lua runs a 5-second version as a test. As a library
-- (`STRESS_LIBRARY = true; local S = dofile "spec/stress.lua"`) it returns
-- {run = function(opts) -> report}.
local go = require "goro"

local M = {}

local function envnum(name, default)
  local v = tonumber(os.getenv(name) or "")
  if v == nil then return default end
  return v
end

-- ------------------------------------------------------------------ helpers
-- Values travel in several shapes so that both the inline and the
-- serialized transfer paths are exercised; every shape carries an id.

local SHAPES = {"int", "float", "string", "table", "longstring"}

local function mkval(shape, id)
  if shape == "int" then return id
  elseif shape == "float" then return id + 0.5
  elseif shape == "string" then return "v" .. id
  elseif shape == "longstring" then return ("%d:%s"):format(id, ("x"):rep(id % 97 + 20))
  else
    local t = {id = id, sub = {id, id * 2}, f = id + 0.25}
    t.self = t
    return t
  end
end

-- The id of a value made by mkval, checking its shape (it runs in
-- goroutines: it is transferred with them as an upvalue).
local function idof(shape, v)
  if shape == "int" then
    assert(math.type(v) == "integer", "stress: an integer arrived as " .. tostring(math.type(v)))
    return v
  elseif shape == "float" then
    assert(math.type(v) == "float", "stress: a float arrived as " .. tostring(math.type(v)))
    return math.tointeger(v - 0.5)
  elseif shape == "string" then
    return assert(tonumber(v:sub(2)), "stress: bad string value")
  elseif shape == "longstring" then
    local id, pad = v:match("^(%d+):(x*)$")
    id = tonumber(id)
    assert(id and #pad == id % 97 + 20, "stress: a long string arrived damaged")
    return id
  else
    assert(type(v) == "table" and v.self == v and v.sub[2] == v.id * 2 and
      math.type(v.id) == "integer" and v.f == v.id + 0.25, "stress: a table arrived damaged")
    return v.id
  end
end

-- ------------------------------------------------------------------ scenarios
-- Each scenario is function(ctx) -> ops. ctx: rnd (the round's RNG, a
-- function like math.random), seed (for goroutines' own RNGs), scale,
-- await(ch, what) (a receive with the watchdog), fail(msg).
-- Goroutine bodies only use their arguments and `go`, `idof`, `mkval`.

local S = {}

local function n_of(ctx, lo, hi)
  return math.max(lo, math.floor(ctx.rnd(lo, hi) * ctx.scale + 0.5))
end

-- Accounting of ids 1..total: each id must appear in exactly one of the
-- given lists (received by someone, left in a channel, or undelivered).
local function account(ctx, total, lists, what)
  local seen = {}
  for name, list in pairs(lists) do
    for _, id in ipairs(list) do
      if math.type(id) ~= "integer" or id < 1 or id > total then
        ctx.fail(("%s: stray id %s in %s"):format(what, tostring(id), name))
      end
      if seen[id] then
        ctx.fail(("%s: id %d counted twice (%s and %s)"):format(what, id, seen[id], name))
      end
      seen[id] = name
    end
  end
  for id = 1, total do
    if not seen[id] then ctx.fail(("%s: id %d lost (sent, never received nor reported)"):format(what, id)) end
  end
end

-- Producers -> [stages] -> consumers; the data channel is closed when the
-- producers are done (waitgroup). Consumers use range, recv, or select with
-- go.after timeouts. Sometimes main changes GOMAXPROCS meanwhile.
function S.pipeline(ctx)
  local rnd = ctx.rnd
  local nprod, ncons = rnd(1, 6), rnd(1, 6)
  local per = n_of(ctx, 1, 300)
  local caps = {0, 0, 1, 2, 7, 64}
  local shape = SHAPES[rnd(#SHAPES)]
  local nstages = rnd(0, 2)
  local total = nprod * per
  local rep = go.chan(64)
  local first = go.chan(caps[rnd(#caps)])
  local pwg = go.waitgroup()
  for p = 1, nprod do
    pwg:add(1)
    go(function(p, seed, first, pwg, rep)
      math.randomseed(seed)
      local ops = 0
      for k = 1, per do
        first:send(mkval(shape, (p - 1) * per + k))
        ops = ops + 1
        if math.random(16) == 1 then go.yield() end
      end
      pwg:done()
      rep:send({kind = "prod", ops = ops + 1})
    end, p, ctx.seed + p, first, pwg, rep)
  end
  go(function() pwg:wait(); first:close(); rep:send({kind = "closer", ops = 2}) end)
  local src = first
  local nspawned = nprod + 1
  for _ = 1, nstages do
    local out = go.chan(caps[rnd(#caps)])
    local swg = go.waitgroup()
    local nw = rnd(1, 3)
    for _ = 1, nw do
      swg:add(1)
      go(function(src, out, swg, rep)
        local ops = 0
        for v in src:range() do
          idof(shape, v)
          out:send(v)
          ops = ops + 2
        end
        swg:done()
        rep:send({kind = "stage", ops = ops + 1})
      end, src, out, swg, rep)
    end
    go(function() swg:wait(); out:close(); rep:send({kind = "closer", ops = 2}) end)
    nspawned = nspawned + nw + 1
    src = out
  end
  for c = 1, ncons do
    local mode = ({"range", "recv", "select"})[rnd(3)]
    go(function(src, rep, seed)
      math.randomseed(seed)
      local got, ops, timeouts = {}, 0, 0
      if mode == "range" then
        for v in src:range() do got[#got + 1] = idof(shape, v); ops = ops + 1 end
      elseif mode == "recv" then
        while true do
          local v, ok = src:recv()
          ops = ops + 1
          if not ok then break end
          got[#got + 1] = idof(shape, v)
        end
      else
        while true do
          local i, v, ok = go.select{{src, "recv"}, {go.after(math.random() * 0.002), "recv"}}
          ops = ops + 1
          if i == 2 then
            timeouts = timeouts + 1
          elseif not ok then
            break
          else
            got[#got + 1] = idof(shape, v)
          end
        end
      end
      rep:send({kind = "cons", got = got, ops = ops + 1, timeouts = timeouts})
    end, src, rep, ctx.seed * 7 + c)
  end
  nspawned = nspawned + ncons
  local procs
  if rnd(4) == 1 then
    procs = go.gomaxprocs(rnd(1, 8))
    go.yield()
  end
  local lists, ops = {}, 0
  for i = 1, nspawned do
    local r = ctx.await(rep, "pipeline report")
    ops = ops + r.ops
    if r.kind == "cons" then lists["consumer " .. i] = r.got end
    if procs and i == 1 then go.gomaxprocs(procs); procs = nil end
  end
  if procs then go.gomaxprocs(procs) end
  account(ctx, total, lists, ("pipeline(%d producers, %d stages, %d consumers, %s)")
    :format(nprod, nstages, ncons, shape))
  return ops + 1
end

-- Cancellation by closing a `done` channel: producers select between
-- sending and done, consumers between receiving and done; the first
-- consumer to reach its quota (or the end of the producers) closes done,
-- once. Values left in the channel are drained by main.
function S.cancel(ctx)
  local rnd = ctx.rnd
  local nprod, ncons = rnd(1, 5), rnd(1, 5)
  local per = n_of(ctx, 1, 300)
  local total = nprod * per
  local cap = ({0, 1, 3, 32})[rnd(4)]
  local shape = SHAPES[rnd(#SHAPES)]
  local data, done, once = go.chan(cap), go.chan(), go.chan(1)
  local rep = go.chan(32)
  local pwg = go.waitgroup()
  for p = 1, nprod do
    pwg:add(1)
    go(function(p)
      local sent, unsent, ops = {}, {}, 0
      for k = 1, per do
        local id = (p - 1) * per + k
        local i = go.select{{data, "send", mkval(shape, id)}, {done, "recv"}}
        ops = ops + 1
        if i == 1 then
          sent[#sent + 1] = id
        else
          for j = k, per do unsent[#unsent + 1] = (p - 1) * per + j end
          break
        end
      end
      pwg:done()
      rep:send({kind = "prod", sent = sent, unsent = unsent, ops = ops + 1})
    end, p)
  end
  go(function()
    pwg:wait()
    if once:trysend(true) then done:close() end
    rep:send({kind = "closer", ops = 3})
  end)
  for _ = 1, ncons do
    local quota = rnd(1, total)
    go(function()
      local got, ops = {}, 0
      while true do
        local i, v = go.select{{data, "recv"}, {done, "recv"}}
        ops = ops + 1
        if i == 2 then break end
        got[#got + 1] = idof(shape, v)
        if #got == quota and once:trysend(true) then done:close(); ops = ops + 2 end
      end
      rep:send({kind = "cons", got = got, ops = ops + 1})
    end)
  end
  local lists = {sent = {}, received = {}, unsent = {}, left = {}}
  local ops = 0
  for _ = 1, nprod + ncons + 1 do
    local r = ctx.await(rep, "cancel report")
    ops = ops + r.ops
    if r.kind == "prod" then
      for _, id in ipairs(r.sent) do lists.sent[#lists.sent + 1] = id end
      for _, id in ipairs(r.unsent) do lists.unsent[#lists.unsent + 1] = id end
    elseif r.kind == "cons" then
      for _, id in ipairs(r.got) do lists.received[#lists.received + 1] = id end
    end
  end
  while true do
    local v, ok = data:tryrecv()
    ops = ops + 1
    if not ok then break end
    lists.left[#lists.left + 1] = idof(shape, v)
  end
  -- every id: sent (and then received or left) or unsent
  account(ctx, total, {sent = lists.sent, unsent = lists.unsent}, "cancel (producers)")
  account(ctx, total, {received = lists.received, left = lists.left, unsent = lists.unsent},
    "cancel (consumers)")
  return ops
end

-- The data channel is closed under active senders once K values have been
-- received in all: senders parked or arriving later get "send on closed
-- channel" (caught) and report the value undelivered; receivers drain.
function S.closed_under_senders(ctx)
  local rnd = ctx.rnd
  local nprod, ncons = rnd(1, 5), rnd(1, 4)
  local per = n_of(ctx, 1, 200)
  local total = nprod * per
  local k = rnd(1, total)
  local shape = SHAPES[rnd(#SHAPES)]
  local data = go.chan(({0, 1, 4, 16})[rnd(4)])
  local count = go.chan(1)
  count:send(0)
  local rep = go.chan(32)
  for p = 1, nprod do
    go(function()
      local sent, undelivered, ops = {}, {}, 0
      for j = 1, per do
        local id = (p - 1) * per + j
        local ok, err = pcall(data.send, data, mkval(shape, id))
        ops = ops + 1
        if ok then
          sent[#sent + 1] = id
        else
          if not tostring(err):find("send on closed channel", 1, true) then error(err, 0) end
          undelivered[#undelivered + 1] = id
        end
      end
      rep:send({kind = "prod", sent = sent, undelivered = undelivered, ops = ops + 1})
    end)
  end
  for _ = 1, ncons do
    go(function()
      local got, ops = {}, 0
      for v in data:range() do
        got[#got + 1] = idof(shape, v)
        local n = count:recv() + 1
        if n == k then data:close() end
        count:send(n)
        ops = ops + 3
      end
      rep:send({kind = "cons", got = got, ops = ops + 1})
    end)
  end
  local sent, received, undelivered, ops = {}, {}, {}, 0
  for _ = 1, nprod + ncons do
    local r = ctx.await(rep, "close report")
    ops = ops + r.ops
    for _, id in ipairs(r.sent or {}) do sent[#sent + 1] = id end
    for _, id in ipairs(r.undelivered or {}) do undelivered[#undelivered + 1] = id end
    for _, id in ipairs(r.got or {}) do received[#received + 1] = id end
  end
  account(ctx, total, {sent = sent, undelivered = undelivered}, "close under senders (producers)")
  account(ctx, total, {received = received, undelivered = undelivered}, "close under senders")
  if #received < k then ctx.fail(("close under senders: %d received, quota %d"):format(#received, k)) end
  local final = count:recv()
  if final ~= #received then ctx.fail("close under senders: count " .. final .. " ~= " .. #received) end
  return ops + 1
end

-- Select with timeouts on both sides: senders give up on a value after a
-- short go.after; receivers count timeouts. sent == received + left.
function S.select_timeouts(ctx)
  local rnd = ctx.rnd
  local n = rnd(2, 6)
  local per = n_of(ctx, 1, 80)
  local chans = {}
  for i = 1, rnd(1, 3) do chans[i] = go.chan(({0, 1, 4})[rnd(3)]) end
  local rep = go.chan(16)
  local stop = go.chan()
  local swg = go.waitgroup()
  for s = 1, n do
    swg:add(1)
    go(function(seed)
      math.randomseed(seed)
      local sent, gaveup, ops = {}, 0, 0
      for j = 1, per do
        local id = (s - 1) * per + j
        local cases = {}
        for i, c in ipairs(chans) do cases[i] = {c, "send", id} end
        cases[#cases + 1] = {go.after(math.random() * 0.001), "recv"}
        local i = go.select(cases)
        ops = ops + 1
        if i <= #chans then sent[#sent + 1] = id else gaveup = gaveup + 1 end
      end
      swg:done()
      rep:send({sent = sent, gaveup = gaveup, ops = ops + 1})
    end, ctx.seed + s)
  end
  go(function() swg:wait(); stop:close() end)
  local nrecv = rnd(1, 4)
  for _ = 1, nrecv do
    go(function(seed)
      math.randomseed(seed)
      local got, timeouts, ops = {}, 0, 0
      while true do
        local cases = {}
        for i, c in ipairs(chans) do cases[i] = {c, "recv"} end
        cases[#cases + 1] = {go.after(math.random() * 0.001), "recv"}
        cases[#cases + 1] = {stop, "recv"}
        local i, v = go.select(cases)
        ops = ops + 1
        if i <= #chans then got[#got + 1] = v
        elseif i == #chans + 1 then timeouts = timeouts + 1
        else break end
      end
      rep:send({got = got, timeouts = timeouts, ops = ops + 1})
    end, ctx.seed * 3 + 1)
  end
  local sent, received, ops = {}, {}, 0
  local gaveup = 0
  for _ = 1, n + nrecv do
    local r = ctx.await(rep, "select report")
    ops = ops + r.ops
    gaveup = gaveup + (r.gaveup or 0)
    for _, id in ipairs(r.sent or {}) do sent[#sent + 1] = id end
    for _, id in ipairs(r.got or {}) do received[#received + 1] = id end
  end
  for _, c in ipairs(chans) do
    while true do
      local v, ok = c:tryrecv()
      if not ok then break end
      received[#received + 1] = v
    end
  end
  table.sort(sent)
  table.sort(received)
  if #sent + gaveup ~= n * per then ctx.fail("select: attempts do not add up") end
  if #sent ~= #received then
    ctx.fail(("select with timeouts: %d sent, %d received"):format(#sent, #received))
  end
  for i = 1, #sent do
    if sent[i] ~= received[i] then ctx.fail("select with timeouts: sent/received ids differ at " .. sent[i]) end
  end
  return ops
end

-- Mutual exclusion with a cap-1 channel as the lock (and go.mutex when the
-- sync library is there): inside the lock a goroutine must find the
-- `inside` slot free and the counter present; the counter ends at the
-- number of increments.
function S.mutex(ctx)
  local rnd = ctx.rnd
  local w = rnd(2, 8)
  local iters = n_of(ctx, 1, 100)
  local use_sync = ctx.has_mutex and rnd(2) == 1
  local mu = use_sync and go.mutex() or go.chan(1)
  local inside, counter = go.chan(1), go.chan(1)
  counter:send(0)
  local wg = go.waitgroup()
  local rep = go.chan(16)
  for i = 1, w do
    wg:add(1)
    go(function(seed)
      math.randomseed(seed)
      local ops = 0
      for _ = 1, iters do
        if use_sync then mu:lock() else mu:send(true) end
        if not inside:trysend(i) then error("stress: two goroutines inside the lock", 0) end
        local v, ok = counter:tryrecv()
        if not ok then error("stress: counter missing under the lock", 0) end
        if math.random(4) == 1 then go.yield() end
        if not counter:trysend(v + 1) then error("stress: counter slot taken under the lock", 0) end
        if inside:tryrecv() ~= i then error("stress: someone else was inside", 0) end
        if use_sync then mu:unlock() else mu:recv() end
        ops = ops + 6
      end
      rep:send(ops)
      wg:done()
    end, ctx.seed + i)
  end
  local ops = 0
  for _ = 1, w do ops = ops + ctx.await(rep, "mutex report") end
  ctx.await_wg(wg)
  local v = counter:recv()
  if v ~= w * iters then ctx.fail(("mutex: counter %d, expected %d"):format(v, w * iters)) end
  return ops + 1
end

-- A tree of goroutines spawning goroutines; each node reports the size of
-- its subtree to its parent through a channel.
function S.spawn_tree(ctx)
  local rnd = ctx.rnd
  local fan = rnd(2, 4)
  local depth = ({[2] = 8, [3] = 5, [4] = 4})[fan]
  if ctx.scale < 0.5 then depth = depth - 2 end
  local function node(d, up, seed)
    math.randomseed(seed)
    local kids = go.chan(({0, fan})[math.random(2)])
    local n = 1
    if d > 0 then
      for k = 1, fan do go(node, d - 1, kids, seed * fan + k) end
      for _ = 1, fan do n = n + kids:recv() end
    end
    up:send(n)
  end
  local top = go.chan()
  go(node, depth, top, ctx.seed)
  local n = ctx.await(top, "spawn tree")
  local expect = (fan ^ (depth + 1) - 1) // (fan - 1)
  if n ~= expect then ctx.fail(("spawn tree: %d nodes reported, %d expected"):format(n, expect)) end
  return n * 3
end

-- Many short goroutines under one waitgroup, each adding its id to a sum
-- kept in a cap-1 channel.
function S.waitgroup(ctx)
  local rnd = ctx.rnd
  local n = n_of(ctx, 1, 400)
  local sum = go.chan(1)
  sum:send(0)
  local wg = go.waitgroup()
  local batch = rnd(1, 3)
  for i = 1, n do
    if batch == 1 then wg:add(1) end
    if batch ~= 1 and (i - 1) % 50 == 0 then wg:add(math.min(50, n - i + 1)) end
    go(function(i) sum:send(sum:recv() + i); wg:done() end, i)
  end
  if rnd(2) == 1 then
    ctx.await_wg(wg)
  else -- a goroutine waits and tells main
    local ok = go.chan()
    go(function() wg:wait(); ok:send(true) end)
    ctx.await(ok, "waitgroup waiter")
  end
  local s = sum:recv()
  if s ~= n * (n + 1) // 2 then ctx.fail(("waitgroup: sum %d, expected %d"):format(s, n * (n + 1) // 2)) end
  if wg:count() ~= 0 then ctx.fail("waitgroup: count not 0") end
  return n * 4
end

-- A ring of goroutines passing tokens over unbuffered channels.
function S.ring(ctx)
  local rnd = ctx.rnd
  local n = rnd(2, 12)
  local laps = n_of(ctx, 1, 60)
  local tokens = rnd(1, math.max(1, n // 2))
  local links = {}
  for i = 1, n do links[i] = go.chan(rnd(0, 1)) end
  local done = go.chan(tokens)
  for i = 1, n do
    go(function(inp, out)
      for v in inp:range() do
        v.hops = v.hops + 1
        if v.hops == laps * n then done:send(v) else out:send(v) end
      end
    end, links[i], links[i % n + 1])
  end
  for t = 1, tokens do links[t]:send({hops = 0, t = t}) end
  local seen = {}
  for _ = 1, tokens do
    local v = ctx.await(done, "ring token")
    if v.hops ~= laps * n or seen[v.t] then ctx.fail("ring: bad token") end
    seen[v.t] = true
  end
  for i = 1, n do links[i]:close() end
  return tokens * laps * n + n
end

-- CPU-bound goroutines that never yield (preempted by sysmon, or not:
-- under TSan signals wait for a libc call) next to a ping-pong pair and
-- goroutines in go.blocking calls (P handoff): everybody finishes, sums
-- are right, the ping-pong count is exact.
function S.preempt(ctx)
  local rnd = ctx.rnd
  local nbusy, nblock = rnd(1, 4), rnd(0, 3)
  local iters = n_of(ctx, 1000, 200000)
  local rounds = n_of(ctx, 1, 300)
  local rep = go.chan(16)
  for b = 1, nbusy do
    go(function(b)
      local x = 0
      for i = 1, iters do x = x + i % 7 end
      rep:send({"busy", x})
    end, b)
  end
  for _ = 1, nblock do
    go(function()
      local x = go.blocking(function(n)
        local y = 0
        for i = 1, n do y = y + i % 7 end
        return y
      end, iters // 4)
      rep:send({"blocking", x})
    end)
  end
  local ping, pong = go.chan(), go.chan()
  go(function()
    for i = 1, rounds do ping:send(i); if pong:recv() ~= i then error("stress: pong out of order", 0) end end
    ping:close()
  end)
  go(function()
    local n = 0
    for v in ping:range() do pong:send(v); n = n + 1 end
    rep:send({"pingpong", n})
  end)
  local function sum7(n) return (n // 7) * 21 + ({0, 1, 3, 6, 10, 15, 21})[n % 7 + 1] end
  for _ = 1, nbusy + nblock + 1 do
    local r = ctx.await(rep, "preempt report")
    local expect = r[1] == "busy" and sum7(iters) or r[1] == "blocking" and sum7(iters // 4) or rounds
    if r[2] ~= expect then ctx.fail(("preempt: %s got %s, expected %s"):format(r[1], r[2], expect)) end
  end
  return nbusy * 2 + nblock * 3 + rounds * 2 + 4
end

-- Channel operations inside the user's own coroutines within goroutines
-- (generators that receive, consumers that send): parks pass through them.
function S.coroutines(ctx)
  local rnd = ctx.rnd
  local n = n_of(ctx, 1, 300)
  local src, out = go.chan(rnd(0, 4)), go.chan(rnd(0, 4))
  go(function() for i = 1, n do src:send(i) end; src:close() end)
  go(function()
    local gen = coroutine.wrap(function()
      for v in src:range() do coroutine.yield(v) end
    end)
    local co = coroutine.create(function()
      while true do
        local v = coroutine.yield()
        if v == nil then break end
        out:send(v * 2)
      end
    end)
    coroutine.resume(co)
    for v in gen do
      local ok, err = coroutine.resume(co, v)
      if not ok then error(err, 0) end
    end
    coroutine.resume(co, nil)
    out:close()
  end)
  local sum, count = 0, 0
  while true do
    local v = ctx.await_or_closed(out, "coroutine output")
    if v == nil then break end
    sum = sum + v
    count = count + 1
  end
  if count ~= n or sum ~= n * (n + 1) then
    ctx.fail(("coroutines: %d values, sum %d; expected %d, %d"):format(count, sum, n, n * (n + 1)))
  end
  return n * 4
end

-- Timers: timeouts that fire, timers stopped before they fire, tickers.
function S.timers(ctx)
  local rnd = ctx.rnd
  local never = go.chan()
  local ops = 0
  -- main: a select whose only way out is a timeout is no deadlock
  local i = go.select{{never, "recv"}, {go.after(rnd() * 0.003), "recv"}}
  if i ~= 2 then ctx.fail("timers: the timeout case did not fire") end
  local t = go.timer(60)
  if t:stop() ~= true then ctx.fail("timers: stop of a pending timer returned false") end
  if t:stop() ~= false then ctx.fail("timers: second stop returned true") end
  local n = rnd(1, 6)
  local rep = go.chan(n)
  for g = 1, n do
    go(function(seed)
      math.randomseed(seed)
      local tk = go.ticker(0.0005 + math.random() * 0.001)
      local ticks = 0
      for _ = 1, 3 do
        local v = tk.c:recv()
        assert(math.type(v) == "float")
        ticks = ticks + 1
      end
      tk:stop()
      local tm = go.timer(0.0005)
      tm.c:recv()
      local stopped = go.timer(30)
      assert(stopped:stop())
      -- a sleeping goroutine is not a deadlock either
      go.sleep(math.random() * 0.002)
      rep:send(ticks + 3)
    end, ctx.seed + g)
  end
  for _ = 1, n do ops = ops + ctx.await(rep, "timer report") end
  -- main waits on a goroutine that sleeps first, then sends
  local c = go.chan()
  go(function() go.sleep(0.001); c:send("late") end)
  if ctx.await(c, "late sender") ~= "late" then ctx.fail("timers: wrong value") end
  return ops + 6
end

-- Errors raised in goroutines: each must reach main exactly once, through
-- go.wait() or by interrupting a blocked receive; other goroutines finish.
function S.errors(ctx)
  local rnd = ctx.rnd
  local nerr, nok = rnd(1, 3), rnd(0, 4)
  local sink = go.chan(64)
  -- every goro call of main raises a pending goroutine error, go() too: the
  -- goroutines wait for `start` so that main's calls before it cannot fail
  local start = go.chan()
  for e = 1, nerr do
    local tag = ctx.round * 10 + e
    go(function(tag, ops)
      start:recv()
      for j = 1, ops do sink:send(j) end
      if tag % 2 == 0 then
        local t = {}
        t[1] = t[2].boom -- a runtime error
      end
      error(("stress-boom %d"):format(tag))
    end, tag, rnd(0, 5))
  end
  for _ = 1, nok do go(function() start:recv(); for j = 1, 3 do sink:send(j) end end) end
  start:close()
  local caught, ops, more = {}, 0, 0
  local mode = rnd(2)
  for _ = 1, nerr + 3 do
    local ok, err
    if mode == 1 then
      ok, err = pcall(go.wait)
    else
      -- interrupted by the error (go.chan() itself may raise it: it is a goro call)
      ok, err = pcall(function() local never = go.chan(); return never:recv() end)
      if not ok and tostring(err):find("deadlock", 1, true) then
        ok, err = pcall(go.wait) -- every error already raised: nothing left to wait for
        if ok then break end
      end
    end
    ops = ops + 1
    if ok then break end
    local tag = tonumber(tostring(err):match("stress%-boom (%d+)"))
    if not tag then
      -- the runtime error variant names no tag: find it from the line
      if tostring(err):find("attempt to index a nil value", 1, true) then
        tag = "index" .. ops
      else
        ctx.fail("errors: unexpected error: " .. tostring(err))
      end
    end
    if not tostring(err):find("^goro: ") then ctx.fail("errors: not a goro: error: " .. tostring(err)) end
    if caught[tag] then ctx.fail("errors: error " .. tostring(tag) .. " raised twice") end
    caught[tag] = true
    -- one raise counts the errors pending with it (the others are printed)
    more = more + (tonumber(tostring(err):match("%(and (%d+) more goroutines? failed%)")) or 0)
  end
  local n = more
  for _ in pairs(caught) do n = n + 1 end
  if n ~= nerr then ctx.fail(("errors: %d goroutine errors raised, %d caught"):format(nerr, n)) end
  go.wait()
  while sink:tryrecv() ~= nil do ops = ops + 1 end
  return ops + nerr + nok
end

-- Deadlocks made on purpose: main waits on something nobody can do while
-- goroutines are parked forever (channel, select, waitgroup); the runtime
-- must say "all goroutines are asleep - deadlock!". Then main frees them.
function S.deadlock(ctx)
  local rnd = ctx.rnd
  local stuck = go.chan()
  local wg = go.waitgroup()
  wg:add(1)
  local n = rnd(0, 4)
  local parked = go.chan(n)
  for g = 1, n do
    local how = rnd(3)
    go(function()
      parked:send(true)
      if how == 1 then stuck:recv()
      elseif how == 2 then go.select{{stuck, "recv"}, {go.chan(), "send", 1}}
      else wg:wait() end
    end)
  end
  for _ = 1, n do ctx.await(parked, "parking goroutines") end
  local never = go.chan()
  local waits = {
    function() return never:recv() end,
    function() return never:send(1) end,
    function() return go.select{{never, "recv"}, {nil, "send", 2}} end,
    function() local w = go.waitgroup(); w:add(1); return w:wait() end,
    function() return go.wait() end,
  }
  local which = rnd(n > 0 and #waits or #waits - 1) -- go.wait() needs someone stuck
  local ok, err = pcall(waits[which])
  if ok or not tostring(err):find("all goroutines are asleep - deadlock!", 1, true) then
    ctx.fail(("deadlock (wait #%d, %d parked goroutines): expected the deadlock error, got %s %s")
      :format(which, n, tostring(ok), tostring(err)))
  end
  stuck:close()
  wg:done()
  return n * 2 + 3
end

M.scenarios = S
M.order = {"pipeline", "cancel", "closed_under_senders", "select_timeouts", "mutex",
           "spawn_tree", "waitgroup", "ring", "preempt", "coroutines", "timers", "errors",
           "deadlock"}
M.weights = {pipeline = 4, cancel = 3, closed_under_senders = 3, select_timeouts = 2,
             mutex = 2, spawn_tree = 1, waitgroup = 2, ring = 2, preempt = 1, coroutines = 1,
             timers = 1, errors = 1, deadlock = 1}

-- ------------------------------------------------------------------ driver

local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.msg end

-- opts: seed, seconds, scale, procs, only (list), verbose, watchdog.
-- Returns {ok, seed, rounds, ops, seconds, per = {name = rounds}, failure}.
function M.run(opts)
  opts = opts or {}
  local seed = opts.seed or (os.time() * 1000 + math.floor(os.clock() * 1e6)) % 2147483647
  local seconds = opts.seconds or 20
  local scale = opts.scale or 1
  local procs = opts.procs or 8
  local watchdog = opts.watchdog or 60
  local names = opts.only or M.order
  local bag = {}
  for _, name in ipairs(names) do
    assert(S[name], "stress: no scenario " .. name)
    for _ = 1, M.weights[name] or 1 do bag[#bag + 1] = name end
  end
  local has_mutex = pcall(function() return go.mutex().lock end)

  local old_procs = go.gomaxprocs(procs)
  go.wait()
  local baseline = go.numgoroutine()
  math.randomseed(seed)
  local t0 = go.now()
  local report = {seed = seed, rounds = 0, ops = 0, per = {}, ok = true, scale = scale,
                  procs = procs}
  local round = 0
  local current
  local function fail(msg)
    error(setmetatable({msg = ("stress: seed %d, round %d (%s): %s"):format(seed, round,
      current, msg)}, Failure), 0)
  end
  -- A receive with a watchdog. The watchdog is a timer stopped afterwards:
  -- a pending timer would keep a later deadlock made on purpose from being
  -- detected (as in Go).
  local function await(ch, what)
    local t = go.timer(watchdog)
    local i, v, ok = go.select{{ch, "recv"}, {t.c, "recv"}}
    t:stop()
    if i ~= 1 then fail(("hung: no %s in %d s"):format(what, watchdog)) end
    if not ok then fail(what .. ": channel closed") end
    return v
  end
  -- The same, where a closed channel is the end (returns nil then).
  local function await_or_closed(ch, what)
    local t = go.timer(watchdog)
    local i, v, ok = go.select{{ch, "recv"}, {t.c, "recv"}}
    t:stop()
    if i ~= 1 then fail(("hung: no %s in %d s"):format(what, watchdog)) end
    if not ok then return nil end
    return v
  end
  local function await_wg(wg)
    local c = go.chan(1)
    go(function() wg:wait(); c:send(true) end)
    return await(c, "waitgroup")
  end
  while go.now() - t0 < seconds do
    round = round + 1
    current = bag[math.random(#bag)]
    local rseed = math.random(1, 1 << 30)
    local ctx = {rnd = math.random, seed = rseed, scale = scale, await = await,
                 await_or_closed = await_or_closed, await_wg = await_wg, fail = fail,
                 round = round, has_mutex = has_mutex}
    local r0 = go.now()
    local ok, res = pcall(S[current], ctx)
    if ok then
      -- every goroutine of the round finishes; none is left behind
      ok, res = pcall(function()
        go.wait()
        local n = go.numgoroutine()
        if n ~= baseline then fail(("goroutine leak: %d alive after go.wait(), baseline %d"):format(n, baseline)) end
        return res
      end)
    end
    if not ok then
      report.ok = false
      report.failure = getmetatable(res) == Failure and res.msg or
        ("stress: seed %d, round %d (%s): unexpected error: %s"):format(seed, round, current, tostring(res))
      break
    end
    report.ops = report.ops + res
    report.per[current] = (report.per[current] or 0) + 1
    if opts.verbose then
      print(("round %d %-22s %7d ops %6.3f s"):format(round, current, res, go.now() - r0))
    end
  end
  report.rounds = round
  report.seconds = go.now() - t0
  go.gomaxprocs(old_procs)
  return report
end

function M.summary(r)
  local per = {}
  for _, name in ipairs(M.order) do
    if r.per[name] then per[#per + 1] = ("%s=%d"):format(name, r.per[name]) end
  end
  return ("stress: seed %d, %d rounds, %d operations in %.1f s (%.0f ops/s), %d Ps, scale %g: %s\n  rounds: %s")
    :format(r.seed, r.rounds, r.ops, r.seconds, r.ops / math.max(r.seconds, 1e-9), r.procs,
      r.scale, r.ok and "OK" or "FAILED", table.concat(per, " "))
end

function M.opts_from_env(defaults)
  defaults = defaults or {}
  local only
  if os.getenv("STRESS_ONLY") then
    only = {}
    for name in os.getenv("STRESS_ONLY"):gmatch("[%w_]+") do only[#only + 1] = name end
  end
  local seed = envnum("STRESS_SEED", defaults.seed)
  if not seed then
    local f = io.open("/dev/urandom", "rb")
    local b = f and f:read(4)
    if f then f:close() end
    seed = b and (string.unpack("<I4", b) & 0x7fffffff) or os.time()
  end
  return {
    seed = seed,
    seconds = envnum("STRESS_SECONDS", defaults.seconds or 20),
    scale = envnum("STRESS_SCALE", defaults.scale or 1),
    procs = envnum("STRESS_PROCS", defaults.procs or 8),
    watchdog = envnum("STRESS_WATCHDOG", defaults.watchdog or 60),
    verbose = os.getenv("STRESS_VERBOSE") == "1",
    only = only,
  }
end

if rawget(_G, "STRESS_LIBRARY") then return M end

local opts = M.opts_from_env()
print(("stress: seed %d (replay: STRESS_SEED=%d), %g s, scale %g, %d Ps")
  :format(opts.seed, opts.seed, opts.seconds, opts.scale, opts.procs))
local r = M.run(opts)
print(M.summary(r))
if not r.ok then
  print(r.failure)
  print(("stress: FAILED: replay with STRESS_SEED=%d"):format(r.seed))
  os.exit(1)
end
