/**
 * @module limits/lua
 * The Redis scripts: reserve (check every counter, then take from all or none) and settle
 * (apply differences, free slots). Each runs atomically inside Redis, one round trip per call.
 *
 * reserve: KEYS = counters; ARGV = now, reservation id, lease end, lease TTL, then per key
 * kind ('w' window sum, 'b' budget, 'c' concurrency set), limit, amount, TTL (ms).
 * Returns { admitted (0|1), used_1 … used_n } where used is the value before this request.
 * The clock is the gateway's (`now`), not Redis `TIME`: windows and lease ends then agree with
 * the in-memory backend and the tests' injected clock; replicas' clocks need NTP-level agreement.
 *
 * settle: KEYS = counters; ARGV = reservation id, then per key kind, delta, TTL. Window sums
 * never go below zero (a refund after the counter expired and restarted).
 */

export const RESERVE_LUA = `
local now = tonumber(ARGV[1])
local id = ARGV[2]
local leaseUntil = tonumber(ARGV[3])
local leaseTtl = tonumber(ARGV[4])
local n = #KEYS
local used = {}
local ok = 1
for i = 1, n do
  local a = 4 + (i - 1) * 4
  local kind = ARGV[a + 1]
  local limit = tonumber(ARGV[a + 2])
  local amount = tonumber(ARGV[a + 3])
  local cur
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    cur = redis.call('ZCARD', KEYS[i])
    if cur + 1 > limit then ok = 0 end
  else
    cur = tonumber(redis.call('GET', KEYS[i]) or '0')
    if kind == 'b' then
      if cur >= limit then ok = 0 end
    elseif cur + amount > limit then
      ok = 0
    end
  end
  used[i] = cur
end
if ok == 1 then
  for i = 1, n do
    local a = 4 + (i - 1) * 4
    local kind = ARGV[a + 1]
    if kind == 'c' then
      redis.call('ZADD', KEYS[i], leaseUntil, id)
      redis.call('PEXPIRE', KEYS[i], leaseTtl)
    else
      local amount = tonumber(ARGV[a + 3])
      redis.call('INCRBY', KEYS[i], amount)
      if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[a + 4])) end
    end
  end
end
local out = { ok }
for i = 1, n do out[i + 1] = used[i] end
return out
`;

export const SETTLE_LUA = `
local id = ARGV[1]
for i = 1, #KEYS do
  local a = 1 + (i - 1) * 3
  local kind = ARGV[a + 1]
  if kind == 'c' then
    redis.call('ZREM', KEYS[i], id)
  else
    local delta = tonumber(ARGV[a + 2])
    local v = redis.call('INCRBY', KEYS[i], delta)
    if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[a + 3])) end
  end
end
return 1
`;
