-- pool.lua: drive pool_relay with Pktgen-DPDK replaying a POOL capture.
--
-- Pktgen loads the capture at start (-s PORT:FILE) and this script turns
-- pcap mode on, sends at a percentage of the port's link speed, samples
-- the rates once a second and prints a summary line in the same form as
-- pool_gen's:
--
--   tx_pps=... rx_pps=... lost=...
--
-- Settings come from the environment (all optional):
--   POOL_TX_PORT   Pktgen port that sends to the relay            (0)
--   POOL_RX_PORT   Pktgen port the relay's output comes back on   (1)
--   POOL_RATE      percent of the TX port's link speed, 1-100     (100)
--   POOL_SECONDS   seconds to send                                (10)
--   POOL_WARMUP    seconds before sampling starts                 (2)
--
-- See README.md for the command line, the core layout and the relay's
-- configuration.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local function setting(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

local txPort  = setting("POOL_TX_PORT", "0")
local rxPort  = setting("POOL_RX_PORT", "1")
local rate    = tonumber(setting("POOL_RATE", "100"))
local seconds = tonumber(setting("POOL_SECONDS", "10"))
local warmup  = tonumber(setting("POOL_WARMUP", "2"))
local tx, rx  = tonumber(txPort), tonumber(rxPort)

pktgen.screen("off")
pktgen.stop("all")
pktgen.clr()

-- Replay the capture given with -s, looping, at the chosen rate. Pktgen
-- sends the frames as they are: addresses, POOL headers and hop MACs
-- come from the capture.
pktgen.set(txPort, "rate", rate)
pktgen.pcap(txPort, "on")
pktgen.delay(500)

pktgen.start(txPort)
pktgen.delay(warmup * 1000)
local base = pktgen.portStats("all", "port")
local txSamples, rxSamples = {}, {}
for i = 1, seconds do
    pktgen.delay(1000)
    local r = pktgen.portStats("all", "rate")
    txSamples[i] = r[tx].pkts_tx
    rxSamples[i] = r[rx].pkts_rx
    printf("t=%2ds tx_pps=%d rx_pps=%d\n", i, txSamples[i], rxSamples[i])
end
pktgen.stop(txPort)
-- Let the frames in flight arrive before the final counts.
pktgen.delay(1000)
local final = pktgen.portStats("all", "port")

local function median(t)
    local s = {}
    for i, v in ipairs(t) do s[i] = v end
    table.sort(s)
    return s[math.floor((#s + 1) / 2)] or 0
end

local sent = final[tx].opackets - base[tx].opackets
local got = final[rx].ipackets - base[rx].ipackets
printf("tx_pps=%d rx_pps=%d lost=%d\n", median(txSamples), median(rxSamples), sent - got)
printf("rx_missed=%d rx_errors=%d tx_errors=%d rx_nombuf=%d\n",
    final[rx].imissed, final[rx].ierrors, final[tx].oerrors, final[rx].rx_nombuf)

if pktgen.quit ~= nil then
    pktgen.quit()
end
