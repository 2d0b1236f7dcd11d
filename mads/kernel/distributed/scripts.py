"""The bus's atomic steps, as Lua scripts Redis runs whole: publishing a message, joining a conversation.

One script publishes (a batch of messages in one call, each in order): it updates the conversation's members, works out who receives the
message (the mentioned, else every member but the sender), appends it to each observer's
inbox and each recipient MAD's (in that order, as the in-memory bus delivers), and hands a
reply to the process waiting for it. Being one step, every
publish has one place in one order: per-conversation order holds in every inbox. What a call
reads of the registry (a conversation's members and count, who is a MAD, the observers) it reads
once and keeps up to date with its own writes: nothing else runs while it does.
"""
from __future__ import annotations

PUBLISH = """
local p = ARGV[1]
local mads_key, participants_key = p .. ':mads', p .. ':participants'
-- what one call reads once (it runs whole: nothing else changes these meanwhile, and its own writes update them)
local is_mad, is_participant, decoded, convs, inboxes = {}, {}, {}, {}, {}
local observers = nil
local function inbox(name)
  local key = inboxes[name]
  if key == nil then
    key = p .. ':inbox:' .. name
    inboxes[name] = key
  end
  return key
end
local function member(cache, set_key, name)
  local found = cache[name]
  if found == nil then
    found = redis.call('SISMEMBER', set_key, name) == 1
    cache[name] = found
  end
  return found
end
local function mad(name) return member(is_mad, mads_key, name) end
local function participant(name) return member(is_participant, participants_key, name) end
local function conversation(cid)
  local conv = convs[cid]
  if conv == nil then
    local key = p .. ':conv:' .. cid
    if redis.call('EXISTS', key) == 0 then
      conv = false
    else
      local members = redis.call('LRANGE', key .. ':members', 0, -1)
      local set = {}
      for _, name in ipairs(members) do set[name] = true end
      conv = {key = key, members = members, set = set, count = tonumber(redis.call('HGET', key, 'messages')) or 0,
              added = 0, version = 0, plans = {}}
    end
    convs[cid] = conv
  end
  return conv
end
local function join(conv, name)
  if not conv.set[name] then
    redis.call('RPUSH', conv.key .. ':members', name)
    conv.set[name] = true
    table.insert(conv.members, name)
    conv.version = conv.version + 1
  end
end
-- who a message goes to, worked out once per sender and mentions while the conversation's members stay the same
local function plan(conv, sender, mentions_json)
  local key = sender .. '\\31' .. mentions_json
  local found = conv.plans[key]
  if found ~= nil and found.version == conv.version then
    return found
  end
  local mentions = decoded[mentions_json]
  if mentions == nil then
    mentions = cjson.decode(mentions_json)
    decoded[mentions_json] = mentions
  end
  join(conv, sender)
  local known, k = {}, 0
  for _, name in ipairs(mentions) do
    if mad(name) or participant(name) then
      k = k + 1
      known[k] = name
      join(conv, name)
    end
  end
  local addressed = k > 0
  local pool = conv.members
  if addressed then pool = known end
  local targets, recipients, t, r = {}, {}, 0, 0
  for _, name in ipairs(pool) do
    if name ~= sender then
      t = t + 1
      targets[t] = name
      if mad(name) then
        r = r + 1
        recipients[r] = name
      end
    end
  end
  found = {version = conv.version, flag = addressed and '1' or '0', recipients = recipients,
           answer = table.concat(targets, '\\31') .. '\\30' .. table.concat(recipients, '\\31')}
  conv.plans[key] = found
  return found
end
local function publish(message, cid, sender, mentions_json, reply_to)
  local conv = conversation(cid)
  if not conv then
    return 'unknown conversation'
  end
  local route = plan(conv, sender, mentions_json)
  conv.added = conv.added + 1
  -- observers first, as in one process: an observer that is also addressed has seen the message when it answers
  if observers == nil then observers = redis.call('SMEMBERS', p .. ':observers') end
  if #observers > 0 then
    local fields = redis.call('HMGET', conv.key, 'name', 'tags', 'created')
    local quoted = {}
    for i, name in ipairs(conv.members) do quoted[i] = cjson.encode(name) end
    local snapshot = '{"id":' .. cjson.encode(cid) .. ',"name":' .. cjson.encode(fields[1]) .. ',"participants":['
      .. table.concat(quoted, ',') .. '],"tags":' .. fields[2] .. ',"created":' .. fields[3] .. ',"messages":'
      .. (conv.count + conv.added) .. '}'
    for _, name in ipairs(observers) do
      if name ~= sender then
        redis.call('XADD', inbox(name), '*', 'kind', 'observe', 'message', message, 'conversation', snapshot)
      end
    end
  end
  local flag = route.flag
  for _, name in ipairs(route.recipients) do
    redis.call('XADD', inbox(name), '*', 'kind', 'message', 'addressed', flag, 'message', message)
  end
  if reply_to ~= '' then
    local waiter = redis.call('GET', p .. ':wait:' .. reply_to)
    if waiter then
      redis.call('XADD', p .. ':replies:' .. waiter, '*', 'kind', 'reply', 'message', message)
    end
  end
  return route.answer
end
local answers = {}
for i = 2, #ARGV do
  local packed = ARGV[i]
  local a = string.find(packed, '\\31', 1, true)
  local b = string.find(packed, '\\31', a + 1, true)
  local c = string.find(packed, '\\31', b + 1, true)
  local d = string.find(packed, '\\31', c + 1, true)
  answers[i - 1] = publish(string.sub(packed, d + 1), string.sub(packed, 1, a - 1), string.sub(packed, a + 1, b - 1),
                           string.sub(packed, b + 1, c - 1), string.sub(packed, c + 1, d - 1))
end
for _, conv in pairs(convs) do  -- each conversation's count moves once, by the messages it got
  if conv and conv.added > 0 then redis.call('HINCRBY', conv.key, 'messages', conv.added) end
end
return answers
"""
"""Publishes messages in order, each as one atomic step: ARGV is the prefix, then one value a message:
conversation, sender, mentions (JSON), reply_to and the message's JSON, joined by the unit separator
(\\x1f, which JSON never holds raw; one value a message keeps the client's encoding work small). One
answer a message, a string: its targets and its recipients, each joined by the unit separator, the two
parted by the record separator (\\x1e) (a string answers at a fraction of the cost of nested lists), or the
text `unknown conversation`."""

SEPARATOR = "\x1f"
PARTS = "\x1e"


JOIN = """
local conv = KEYS[1]
if redis.call('EXISTS', conv) == 0 then
  return redis.error_reply('unknown conversation')
end
if redis.call('LPOS', KEYS[2], ARGV[1]) == false then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return 1
"""


ACK = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
"""
"""Acknowledges entries of one stream (KEYS[1]) for the group ARGV[1] and deletes them, in one step: the
entries are ARGV[2..] (a settlement with nothing to publish; one with replies or results goes in a
transaction with them)."""
