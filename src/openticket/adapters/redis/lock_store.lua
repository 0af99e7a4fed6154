#!lua
-- The seat lock store: one call applies a whole batch of lock operations of ONE session.
--
-- KEYS[1]  {prefix}seat:token:{<session>}          the session's fencing-token counter
-- ARGV[1]  {prefix}seat:lock:{<session>}:          + seat id  -> a seat's lock or sold mark
-- ARGV[2]  {prefix}seat:holds:{<session>}:         + area id  -> hash hold id -> hold record
-- ARGV[3]  {prefix}seat:sold:{<session>}:          + area id  -> hash seat id -> order id
-- ARGV[4]  JSON [now_ms, op, op, ...], each op one of
--            [1, [seat, ...], hold, area, holder, order, "expires_ms", after] acquire
--            [2, [seat, ...], hold, area]                              release
--            [3, [seat, ...], hold, area, "expires_ms"]                extend
--            [4, [seat, ...], hold, area, token]                       mark sold
--            [5, [seat, ...], area]                                    release sold
--            [6, [seat, ...], hold, area, holder, order, "expires_ms", token] restore
--            [0, area]                                                 load (alone in its call)
-- Returns  JSON, one answer per op:
--            acquire       the new token, or the seats that stood in the way
--            release       the seats it unlocked (release sold: the seats it freed)
--            extend, sell, restore  true (every listed seat), or the seats in the way
--            load          [last_token, [hold, record, ...], [seat, order, ...]]
--          (cjson writes an empty list as {}.)
--
-- Every key is under the session's hash tag {<session>}: one cluster slot per session.
-- Every op names its area: the partition hashes it touches are the op's area's, never an
-- area read out of a seat id (to the script a seat id is an opaque name).
--
-- Values (ids are 32 hex digits, times integer milliseconds of the store's clock):
--   lock        <expires>|<token>|<hold>|<holder>|<order>|<area>    PX until <expires>
--   sold mark   S|<hold>|<token>|<order>|<area>                     no TTL
--   hold record <expires>|<token>|<holder>|<order>|<seat>,<seat>,... (in the partition hash)
-- A lock whose <expires> is not after now counts as gone even if Redis still has the key:
-- expiry follows the store's clock; the keys' TTLs collect the garbage.
--
-- Tokens never go back: an acquire names the newest token its caller saw (`after`) and
-- gets a larger one, and a restore raises the counter to its hold's token, so a Redis
-- that lost its keys (restarted without persistence, flushed) keeps counting upwards.
--
-- The script reads every listed seat with one MGET, keeps what it writes in `value`,
-- takes tokens from one GET and one SET, and writes the index hashes once per batch:
-- one SET per locked seat is most of what an acquire costs. Times come as strings and a
-- token is formatted once: Lua formats a number into a string slowly (sprintf).

local call = redis.call
local byte, match, gmatch, concat = string.byte, string.match, string.gmatch, table.concat
local tonumber, tostring, unpack, pairs = tonumber, tostring, unpack, pairs

local token_key = KEYS[1]
local lock_base, holds_base, sold_base = ARGV[1], ARGV[2], ARGV[3]
local batch = cjson.decode(ARGV[4])
local now = batch[1]

local SOLD = 83 -- 'S'
local CHUNK = 4000 -- arguments per MGET/HSET/HDEL (unpack has a stack limit)

-- --- seats: read once, then what this batch wrote ----------------------------------------

local value = {} -- seat -> its lock value, or false when it has none

do
  local seats, n = {}, 0
  for i = 2, #batch do
    local listed = batch[i][2]
    if type(listed) == 'table' then
      for j = 1, #listed do
        local seat = listed[j]
        if value[seat] == nil then
          value[seat] = false
          n = n + 1
          seats[n] = seat
        end
      end
    end
  end
  for first = 1, n, CHUNK do
    local last = math.min(first + CHUNK - 1, n)
    local keys = {}
    for j = first, last do
      keys[j - first + 1] = lock_base .. seats[j]
    end
    local found = call('MGET', unpack(keys))
    for j = first, last do
      value[seats[j]] = found[j - first + 1]
    end
  end
end

local function get(seat)
  local v = value[seat]
  if v == nil then -- a seat of a hold record that the batch does not list
    v = call('GET', lock_base .. seat)
    value[seat] = v
  end
  return v
end

local function set(seat, v, px)
  call('SET', lock_base .. seat, v, 'PX', px)
  value[seat] = v
end

local function set_sold(seat, v)
  call('SET', lock_base .. seat, v) -- no PX: the old TTL goes, a sold mark stays
  value[seat] = v
end

local function del(seat)
  call('DEL', lock_base .. seat)
  value[seat] = false
end

-- --- tokens: one GET and one SET per batch -------------------------------------------------

local last_token, moved = nil, false

local function current_token()
  if not last_token then
    last_token = tonumber(call('GET', token_key) or 0)
  end
  return last_token
end

-- At least `floor`: a counter that forgot what it had issued catches up with its callers.
local function lift_token(floor)
  if floor and floor > current_token() then
    last_token = floor
    moved = true
  end
end

local function next_token(after)
  lift_token(after)
  last_token = current_token() + 1
  moved = true
  return last_token
end

-- --- index hashes: read through, written once at the end ---------------------------------

local hashes = {} -- key -> field -> value, or false to delete
local lifetimes = {} -- hold hash key -> the longest TTL (ms) this batch gave a hold in it

local function hget(key, field)
  local fields = hashes[key]
  if fields then
    local v = fields[field]
    if v ~= nil then
      return v
    end
  end
  return call('HGET', key, field)
end

local function hput(key, field, v)
  local fields = hashes[key]
  if not fields then
    fields = {}
    hashes[key] = fields
  end
  fields[field] = v
end

local function outlive(key, px)
  local longest = lifetimes[key]
  if not longest or longest < px then
    lifetimes[key] = px
  end
end

local function flush()
  if moved then -- the script runs alone: what it read is still the counter
    call('SET', token_key, last_token)
  end
  for key, fields in pairs(hashes) do
    local sets, dels, n, m = {}, {}, 0, 0
    for field, v in pairs(fields) do
      if v then
        sets[n + 1], sets[n + 2] = field, v
        n = n + 2
      else
        m = m + 1
        dels[m] = field
      end
    end
    for first = 1, m, CHUNK do
      call('HDEL', key, unpack(dels, first, math.min(first + CHUNK - 1, m)))
    end
    for first = 1, n, CHUNK do
      call('HSET', key, unpack(sets, first, math.min(first + CHUNK - 1, n)))
    end
    local px = lifetimes[key]
    if px and n > 0 then -- the hash of holds lives as long as its longest hold
      if call('PTTL', key) < px then
        call('PEXPIRE', key, px)
      end
    end
  end
end

-- --- operations --------------------------------------------------------------------------

-- Drop a hold from its partition's index unless one of its seats is still locked by it
-- (a release of only some of its seats leaves the hold in place, as the memory store does).
local function unindex(area, hold, listed)
  local key = holds_base .. area
  local record = hget(key, hold)
  if not record then
    return
  end
  for seat in gmatch(match(record, '^%d+|%d+|%x+|%x+|(.*)$') or '', '[^,]+') do
    if not listed[seat] then
      local v = get(seat)
      if v and byte(v, 1) ~= SOLD then
        local e, h = match(v, '^(%d+)|%d+|(%x+)|')
        if h == hold and tonumber(e) > now then
          return
        end
      end
    end
  end
  hput(key, hold, false)
end

local function acquire(op)
  local seats, hold, area, holder, order, expires = op[2], op[3], op[4], op[5], op[6], op[7]
  local after = op[8]
  local taken, n = {}, 0
  local replayed = #seats > 0 -- every seat already locked live by this very hold (a retry)
  local own_token
  for i = 1, #seats do
    local seat = seats[i]
    local v = value[seat]
    if not v then
      replayed = false
    elseif byte(v, 1) == SOLD then
      n = n + 1
      taken[n] = seat
    else
      local e, t, h, hr, o, a = match(v, '^(%d+)|(%d+)|(%x+)|(%x+)|(%x+)|(.*)$')
      if tonumber(e) > now then
        if h == hold and hr == holder and o == order and a == area then
          own_token = t
        else
          n = n + 1
          taken[n] = seat
        end
      else -- expired, still in Redis: its hold is over, so is its index entry
        replayed = false
        if h ~= hold then
          hput(holds_base .. a, h, false)
        end
      end
    end
  end
  if n > 0 then
    return taken
  end
  if replayed and own_token then
    return tonumber(own_token)
  end
  local token = next_token(after)
  local px = expires - now
  if px > 0 then
    local t, ttl = tostring(token), tostring(px)
    local v = expires .. '|' .. t .. '|' .. hold .. '|' .. holder .. '|' .. order .. '|' .. area
    for i = 1, #seats do
      set(seats[i], v, ttl)
    end
    local key = holds_base .. area
    hput(key, hold, expires .. '|' .. t .. '|' .. holder .. '|' .. order .. '|' .. concat(seats, ','))
    outlive(key, px)
  end
  return token
end

local function release(op)
  local seats, hold, area = op[2], op[3], op[4]
  local freed, n = {}, 0
  local listed = {}
  for i = 1, #seats do
    local seat = seats[i]
    listed[seat] = true
    local v = value[seat]
    if v and byte(v, 1) ~= SOLD then
      local e, h = match(v, '^(%d+)|%d+|(%x+)|')
      if h == hold then
        del(seat)
        if tonumber(e) > now then
          n = n + 1
          freed[n] = seat
        end
      end
    end
  end
  if #seats > 0 then
    unindex(area, hold, listed)
  end
  return freed
end

local function extend(op)
  local seats, hold, area, expires = op[2], op[3], op[4], op[5]
  local missing, n = {}, 0
  local rests = {}
  for i = 1, #seats do
    local seat = seats[i]
    local v = value[seat]
    local e, rest, h
    if v and byte(v, 1) ~= SOLD then
      e, rest = match(v, '^(%d+)|(.*)$')
      h = match(rest, '^%d+|(%x+)|')
    end
    if h == hold and tonumber(e) > now then
      rests[i] = rest
    else
      n = n + 1
      missing[n] = seat
    end
  end
  if n > 0 then
    return missing
  end
  if #seats == 0 then
    return true
  end
  local px = expires - now
  local key = holds_base .. area
  if px <= 0 then -- moved into the past: the hold is over
    for i = 1, #seats do
      del(seats[i])
    end
    hput(key, hold, false)
    return true
  end
  local ttl = tostring(px)
  for i = 1, #seats do
    set(seats[i], expires .. '|' .. rests[i], ttl)
  end
  local record = hget(key, hold)
  if record then
    record = expires .. '|' .. match(record, '^%d+|(.*)$')
  else
    local t, holder, order = match(rests[1], '^(%d+)|%x+|(%x+)|(%x+)|')
    record = expires .. '|' .. t .. '|' .. holder .. '|' .. order .. '|' .. concat(seats, ',')
  end
  hput(key, hold, record)
  outlive(key, px)
  return true
end

local function mark_sold(op)
  local seats, hold, area, token = op[2], op[3], op[4], op[5]
  local missing, n = {}, 0
  local stale, m = {}, 0
  local orders = {}
  local selling = false
  for i = 1, #seats do
    local seat = seats[i]
    local v = value[seat]
    if not v then
      n = n + 1
      missing[n] = seat
    elseif byte(v, 1) == SOLD then
      local h, t = match(v, '^S|(%x+)|(%d+)|')
      if h ~= hold or tonumber(t) ~= token then -- else: sold by this very call before (a retry)
        n = n + 1
        missing[n] = seat
      end
    else
      local e, t, h, o = match(v, '^(%d+)|(%d+)|(%x+)|%x+|(%x+)|')
      if h ~= hold or tonumber(e) <= now then
        n = n + 1
        missing[n] = seat
      elseif tonumber(t) ~= token then
        m = m + 1
        stale[m] = seat
      else
        orders[i] = o
        selling = true
      end
    end
  end
  if n + m > 0 then
    for i = 1, m do
      missing[n + i] = stale[i]
    end
    return missing
  end
  if not selling then -- every seat sold by this very call before (a retry), or none listed
    return true
  end
  local mark, sold_key = 'S|' .. hold .. '|' .. token .. '|', sold_base .. area
  for i = 1, #seats do
    local o = orders[i]
    if o then
      local seat = seats[i]
      set_sold(seat, mark .. o .. '|' .. area)
      hput(sold_key, seat, o)
    end
  end
  hput(holds_base .. area, hold, false)
  return true
end

local function release_sold(op)
  local seats, sold_key = op[2], sold_base .. op[3]
  local freed, n = {}, 0
  for i = 1, #seats do
    local seat = seats[i]
    local v = value[seat]
    if v and byte(v, 1) == SOLD then
      del(seat)
      hput(sold_key, seat, false)
      n = n + 1
      freed[n] = seat
    end
  end
  return freed
end

-- Lock a hold's seats again as they were (same hold, token, expiry) where Redis has nothing
-- in the way: it lost them (a restart, a flush). Seats locked live by another hold or token,
-- or sold, refuse the whole restore; seats this very hold still locks are already restored.
local function restore(op)
  local seats, hold, area, holder, order, expires, token =
    op[2], op[3], op[4], op[5], op[6], op[7], op[8]
  local taken, n = {}, 0
  for i = 1, #seats do
    local seat = seats[i]
    local v = value[seat]
    if v then
      if byte(v, 1) == SOLD then
        n = n + 1
        taken[n] = seat
      else
        local e, t, h = match(v, '^(%d+)|(%d+)|(%x+)|')
        if tonumber(e) > now and (h ~= hold or tonumber(t) ~= token) then
          n = n + 1
          taken[n] = seat
        end
      end
    end
  end
  if n > 0 then
    return taken
  end
  lift_token(token)
  local px = expires - now
  if px > 0 then
    local t, ttl = tostring(token), tostring(px)
    local v = expires .. '|' .. t .. '|' .. hold .. '|' .. holder .. '|' .. order .. '|' .. area
    for i = 1, #seats do
      set(seats[i], v, ttl)
    end
    local key = holds_base .. area
    hput(key, hold, expires .. '|' .. t .. '|' .. holder .. '|' .. order .. '|' .. concat(seats, ','))
    outlive(key, px)
  end
  return true
end

-- The partition's live holds (expired ones are pruned from the index), sold seats, token.
local function load(op)
  local key = holds_base .. op[2]
  local all = call('HGETALL', key)
  local live, n = {}, 0
  for i = 1, #all, 2 do
    local record = all[i + 1]
    if tonumber(match(record, '^%d+')) > now then
      live[n + 1], live[n + 2] = all[i], record
      n = n + 2
    else
      hput(key, all[i], false)
    end
  end
  return { current_token(), live, call('HGETALL', sold_base .. op[2]) }
end

local handlers = { [0] = load, acquire, release, extend, mark_sold, release_sold, restore }
local results = {}
for i = 2, #batch do
  local op = batch[i]
  results[i - 1] = handlers[op[1]](op)
end
flush()
return cjson.encode(results)
