"""The bus's atomic steps, as Lua scripts Redis runs whole: publishing a message, joining a conversation.

One script publishes (a batch of messages in one call, each in order): it updates the conversation's members, works out who receives the
message (the mentioned, else every member but the sender), appends it to each observer's
inbox and each recipient MAD's (in that order, as the in-memory bus delivers), and hands a
reply to the process waiting for it. Being one step, every
publish has one place in one order: per-conversation order holds in every inbox.
"""
from __future__ import annotations

PUBLISH = """
local p = ARGV[1]
local function publish(message, cid, sender, mentions_json, reply_to)
  local mentions = cjson.decode(mentions_json)
  local conv = p .. ':conv:' .. cid
  local members_key = conv .. ':members'
  if redis.call('EXISTS', conv) == 0 then
    return 'unknown conversation'
  end
  local function member(name)
    return redis.call('LPOS', members_key, name) ~= false
  end
  if not member(sender) then redis.call('RPUSH', members_key, sender) end
  local known = {}
  for _, name in ipairs(mentions) do
    if redis.call('SISMEMBER', p .. ':mads', name) == 1 or redis.call('SISMEMBER', p .. ':participants', name) == 1 then
      table.insert(known, name)
      if not member(name) then redis.call('RPUSH', members_key, name) end
    end
  end
  local count = redis.call('HINCRBY', conv, 'messages', 1)
  local members = redis.call('LRANGE', members_key, 0, -1)
  local addressed = #known > 0
  local pool = members
  if addressed then pool = known end
  -- observers first, as in one process: an observer that is also addressed has seen the message when it answers
  local observers = redis.call('SMEMBERS', p .. ':observers')
  if #observers > 0 then
    local fields = redis.call('HMGET', conv, 'name', 'tags', 'created')
    local quoted = {}
    for i, name in ipairs(members) do quoted[i] = cjson.encode(name) end
    local snapshot = '{"id":' .. cjson.encode(cid) .. ',"name":' .. cjson.encode(fields[1]) .. ',"participants":['
      .. table.concat(quoted, ',') .. '],"tags":' .. fields[2] .. ',"created":' .. fields[3] .. ',"messages":'
      .. count .. '}'
    for _, name in ipairs(observers) do
      if name ~= sender then
        redis.call('XADD', p .. ':inbox:' .. name, '*', 'kind', 'observe', 'message', message,
                   'conversation', snapshot)
      end
    end
  end
  local targets, recipients = {}, {}
  for _, name in ipairs(pool) do
    if name ~= sender then
      table.insert(targets, name)
      if redis.call('SISMEMBER', p .. ':mads', name) == 1 then
        redis.call('XADD', p .. ':inbox:' .. name, '*', 'kind', 'message', 'addressed', addressed and '1' or '0',
                   'message', message)
        table.insert(recipients, name)
      end
    end
  end
  if reply_to ~= '' then
    local waiter = redis.call('GET', p .. ':wait:' .. reply_to)
    if waiter then
      redis.call('XADD', p .. ':replies:' .. waiter, '*', 'kind', 'reply', 'message', message)
    end
  end
  return {targets, recipients}
end
local answers = {}
for i = 2, #ARGV do
  local packed = ARGV[i]
  local a = string.find(packed, '\\31', 1, true)
  local b = string.find(packed, '\\31', a + 1, true)
  local c = string.find(packed, '\\31', b + 1, true)
  local d = string.find(packed, '\\31', c + 1, true)
  table.insert(answers, publish(string.sub(packed, d + 1), string.sub(packed, 1, a - 1), string.sub(packed, a + 1, b - 1),
                                string.sub(packed, b + 1, c - 1), string.sub(packed, c + 1, d - 1)))
end
return answers
"""
"""Publishes messages in order, each as one atomic step: ARGV is the prefix, then one value a message:
conversation, sender, mentions (JSON), reply_to and the message's JSON, joined by the unit separator
(\\x1f, which JSON never holds raw; one value a message keeps the client's encoding work small). One
answer a message: its targets and recipients (two lists), or the text `unknown conversation`."""

SEPARATOR = "\x1f"


JOIN = """
local conv = KEYS[1]
if redis.call('EXISTS', conv) == 0 then
  return redis.error_reply('unknown conversation')
end
if redis.call('LPOS', KEYS[2], ARGV[1]) == false then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return 1
"""
